using Connect.Proxy;
using Connect.Routing.Streams;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Routing;

/// <summary>Adapts the stream broker (actors) to the proxy's <see cref="ITunnelConnector"/>, turning broker failures into proxy errors with words.</summary>
public sealed class TunnelConnector(StreamBroker broker, LimitMetrics limits) : ITunnelConnector
{
    public async Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken)
    {
        try
        {
            return await broker.OpenAsync(sessionId, target, cancellationToken).ConfigureAwait(false);
        }
        catch (StreamBrokerException e)
        {
            if (e.Failure == BrokerFailure.TooManyStreams)
            {
                limits.Hit(Limits.StreamsPerSession);
            }
            var error = e.Failure switch
            {
                BrokerFailure.NoTunnel => ProxyError.NoTunnel,
                BrokerFailure.TooManyStreams => ProxyError.TooManyStreams,
                BrokerFailure.Timeout => ProxyError.ClusterTimeout,
                _ => e.OpenError switch
                {
                    OpenErrorCode.NotAllowed => ProxyError.DestinationNotAllowed,
                    OpenErrorCode.ConnectionRefused => ProxyError.UpstreamRefused,
                    OpenErrorCode.NameNotResolved => ProxyError.UpstreamNameNotResolved,
                    OpenErrorCode.Unreachable or OpenErrorCode.Timeout => ProxyError.UpstreamUnreachable,
                    OpenErrorCode.BadTarget => ProxyError.BadRequest,
                    _ => ProxyError.UpstreamFailed,
                },
            };
            var message = e.Failure == BrokerFailure.AgentRefused ? $"session '{sessionId}': the agent could not open {target}: {e.Message}" : e.Message;
            throw new TunnelConnectException(error, message);
        }
    }
}
