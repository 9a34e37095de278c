namespace Connect.Tunnel.Frames;

/// <summary>One decoded frame; its payload points into the buffer it was read from and is valid only until that buffer is reused.</summary>
public readonly record struct Frame(FrameType Type, uint StreamId, ReadOnlyMemory<byte> Payload);

/// <summary>A frame that broke the protocol: the WebSocket close code and the reason to send with it.</summary>
public sealed record FrameViolation(int CloseCode, string Reason);

/// <summary>The outcome of one decode step.</summary>
public enum DecodeStatus
{
    /// <summary>A whole, valid frame was decoded.</summary>
    Frame,
    /// <summary>The input ends inside a frame; read more bytes.</summary>
    NeedMore,
    /// <summary>The input breaks the protocol; close the link with the violation's code.</summary>
    Violation,
}
