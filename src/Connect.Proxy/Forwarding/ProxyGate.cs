using Connect.Proxy.Auth;
using Connect.Tunnel.Multiplexing;

namespace Connect.Proxy.Forwarding;

/// <summary>What both proxy paths share: check the client's credentials, then get a tunnel stream, turning every failure into a <see cref="ProxyError"/> and words.</summary>
public sealed class ProxyGate(IProxyAuthenticator authenticator, ITunnelConnector connector)
{
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

    public Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken) =>
        connector.OpenAsync(sessionId, target, cancellationToken);
}
