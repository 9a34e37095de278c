namespace Connect.Actors.Protocol;

/// <summary>Marks a message that may cross nodes; every such type is bound to <see cref="Serialization.ConnectMessageSerializer"/> and has a round-trip test.</summary>
public interface IConnectMessage;
