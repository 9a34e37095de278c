using Connect.Proxy.Auth;
using Connect.Proxy.Configuration;
using Connect.Proxy.Policy;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Options;

namespace Connect.Proxy.Forwarding;

/// <summary>What both proxy paths share: check the client's credentials, then get a tunnel stream, turning every failure into a <see cref="ProxyError"/> and words.</summary>
public sealed class ProxyGate(IProxyAuthenticator authenticator, ITunnelConnector connector, IOptions<ProxyOptions> options, LimitMetrics limits)
{
    private readonly DestinationPolicy _policy = new(options.Value.DestinationPolicy);

    public readonly record struct Verdict(string? SessionId, ProxyError Error, string Reason);

    public Verdict Authorize(string? proxyAuthorization)
    {
        var parsed = ProxyCredentials.TryParse(proxyAuthorization, out var error, out var reason);
        if (parsed is null)
        {
            return new Verdict(null, error, reason);
        }
        var (session, token) = parsed.Value;
        return authenticator.Authorize(session, token) switch
        {
            ProxyAuthResult.Allowed => new Verdict(session, ProxyError.None, string.Empty),
            ProxyAuthResult.SessionNotPermitted => new Verdict(session, ProxyError.SessionForbidden, $"these credentials may not use session '{session}'"),
            _ => new Verdict(session, ProxyError.InvalidCredentials, $"invalid token for session '{session}'"),
        };
    }

    /// <summary>Opens a stream, after the server's destination policy (if any) allowed the target: a refused target never reaches the session or the agent.</summary>
    public Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken)
    {
        if (!_policy.IsEmpty && !_policy.Allows(sessionId, target, out var reason))
        {
            limits.Hit(Limits.DestinationPolicy);
            return Task.FromException<MuxStream>(new TunnelConnectException(ProxyError.DestinationNotAllowed, reason));
        }
        return connector.OpenAsync(sessionId, target, cancellationToken);
    }
}
