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
            // With an unknown token the "session" may well be a token in the wrong field: no session in the verdict (so
            // none in the log line) and none in the 407 body.
            ProxyAuthResult.FieldsSwapped => new Verdict(null, ProxyError.InvalidCredentials,
                "invalid token; the fields look swapped (the session name holds a token): send Proxy-Authorization: Basic base64(session:token)"),
            _ => new Verdict(null, ProxyError.InvalidCredentials, "invalid token (the session name is not repeated here, in case it is a token)"),
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
