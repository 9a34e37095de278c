namespace Connect.Routing.NodeChannel;

/// <summary>Where this node's channel listener binds and how long a peer may take to authenticate (the host fills it from <c>Connect:Cluster</c>).</summary>
public sealed record NodeChannelSettings(string BindAddress, int Port, TimeSpan HandshakeTimeout);
