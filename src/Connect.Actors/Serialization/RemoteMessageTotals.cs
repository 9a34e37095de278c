namespace Connect.Actors.Serialization;

/// <summary>One manifest's remote traffic so far: messages and payload bytes each way.</summary>
public readonly record struct RemoteMessageTotals(string Type, long Sent, long Received, long SentBytes, long ReceivedBytes);
