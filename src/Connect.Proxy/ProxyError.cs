using System.Net;

namespace Connect.Proxy;

/// <summary>Every way a proxy request can fail at the edge; recorded as the response, a log line with an event id, and a metric.</summary>
public enum ProxyError
{
    None = 0,
    /// <summary>The request is not something a forward proxy can serve (origin-form, bad authority...).</summary>
    BadRequest,
    /// <summary>No Proxy-Authorization header (the 407 challenge, RFC 9110 section 11.7.1).</summary>
    MissingCredentials,
    /// <summary>Proxy-Authorization present but malformed or not accepted.</summary>
    InvalidCredentials,
    /// <summary>The credentials are valid but may not use the named session.</summary>
    SessionForbidden,
    /// <summary>The session has no connected agent.</summary>
    NoTunnel,
    /// <summary>The session is at its stream limit.</summary>
    TooManyStreams,
    /// <summary>The agent's allow-list does not include the destination.</summary>
    DestinationNotAllowed,
    /// <summary>The target refused the connection (on the agent's side).</summary>
    UpstreamRefused,
    /// <summary>The target's name did not resolve on the agent's side.</summary>
    UpstreamNameNotResolved,
    /// <summary>The target was unreachable or timed out from the agent.</summary>
    UpstreamUnreachable,
    /// <summary>The tunnel or target failed while the request was in flight.</summary>
    UpstreamFailed,
    /// <summary>The cluster did not answer in time.</summary>
    ClusterTimeout,
    /// <summary>The client went away before the exchange finished.</summary>
    ClientAborted,
    /// <summary>A CONNECT tunnel carried no byte either way for the stream idle timeout and was reset.</summary>
    IdleTimeout,
    /// <summary>The client did not send a complete request head in time (slowloris guard).</summary>
    RequestTimeout,
    /// <summary>The request line is longer than the limit.</summary>
    RequestLineTooLong,
    /// <summary>The request head is larger than the limit.</summary>
    RequestHeadTooLarge,
}

/// <summary>The HTTP status for each <see cref="ProxyError"/>.</summary>
public static class ProxyErrors
{
    public static HttpStatusCode StatusOf(ProxyError error) => error switch
    {
        ProxyError.BadRequest => HttpStatusCode.BadRequest,
        ProxyError.MissingCredentials or ProxyError.InvalidCredentials => HttpStatusCode.ProxyAuthenticationRequired,
        ProxyError.SessionForbidden or ProxyError.DestinationNotAllowed => HttpStatusCode.Forbidden,
        ProxyError.NoTunnel or ProxyError.UpstreamRefused or ProxyError.UpstreamNameNotResolved or ProxyError.UpstreamUnreachable or ProxyError.UpstreamFailed => HttpStatusCode.BadGateway,
        ProxyError.TooManyStreams => HttpStatusCode.ServiceUnavailable,
        ProxyError.ClusterTimeout => HttpStatusCode.GatewayTimeout,
        ProxyError.RequestTimeout => HttpStatusCode.RequestTimeout,
        ProxyError.RequestLineTooLong => HttpStatusCode.RequestUriTooLong,
        ProxyError.RequestHeadTooLarge => HttpStatusCode.RequestHeaderFieldsTooLarge,
        _ => HttpStatusCode.InternalServerError,
    };
}

/// <summary>A tunnel stream could not be had; the proxy answers with <see cref="Error"/>'s status and this message.</summary>
public sealed class TunnelConnectException(ProxyError error, string message) : Exception(message)
{
    public ProxyError Error { get; } = error;
}
