namespace Connect.Proxy.Auth;

public enum ProxyAuthResult
{
    Allowed,
    InvalidToken,
    SessionNotPermitted,
}

/// <summary>Decides whether a proxy client's token may use a session.</summary>
public interface IProxyAuthenticator
{
    ProxyAuthResult Authorize(string sessionId, string token);
}
