using Connect.Tunnel.Multiplexing;

namespace Connect.Proxy;

/// <summary>Gives the proxy a stream to a target through a session's tunnel, wherever in the cluster the tunnel is.</summary>
public interface ITunnelConnector
{
    /// <exception cref="TunnelConnectException">No stream: the error says which status to answer and why.</exception>
    Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken);
}
