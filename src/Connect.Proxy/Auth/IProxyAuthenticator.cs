namespace Connect.Proxy.Auth;

public enum ProxyAuthResult
{
    Allowed,

    /// <summary>The token is unknown. The session text is not to be echoed: it may be a token in the wrong field.</summary>
    InvalidToken,
    SessionNotPermitted,

    /// <summary>Not allowed, and the session field holds a known token: the client swapped the fields. Echo neither.</summary>
    FieldsSwapped,
}

/// <summary>Decides whether a proxy client's token may use a session.</summary>
public interface IProxyAuthenticator
{
    ProxyAuthResult Authorize(string sessionId, string token);
}
