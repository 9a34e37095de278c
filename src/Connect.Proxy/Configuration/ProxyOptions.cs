namespace Connect.Proxy.Configuration;

/// <summary>Limits and behaviour of the proxy front door; bound from <c>Connect:Proxy</c>.</summary>
public sealed record ProxyOptions
{
    /// <summary>The realm in <c>Proxy-Authenticate: Basic realm="connect"</c>.</summary>
    public string Realm { get; init; } = "connect";

    /// <summary>Longest request line accepted (414 beyond it).</summary>
    public int MaxRequestLineBytes { get; init; } = 8 * 1024;

    /// <summary>Largest request head (request line and headers) accepted (431 beyond it).</summary>
    public int MaxRequestHeadBytes { get; init; } = 32 * 1024;

    /// <summary>How long a client may take to send a request head (408 after it; slowloris guard).</summary>
    public TimeSpan RequestHeadTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a pooled upstream stream may stay idle before it is closed (absolute-form keep-alive to targets).</summary>
    public TimeSpan UpstreamIdleTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Longest life of a pooled upstream stream. Short, because a pooled stream keeps its link busy: a draining link
    /// can close only when the streams kept for reuse on it have been retired.
    /// </summary>
    public TimeSpan UpstreamConnectionLifetime { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a CONNECT may wait for its tunnel stream (a link to attach, the agent to dial the target) before it is
    /// answered 504. Above the session hold timeout plus the agent's dial timeout, so this is the last bound, not the first.
    /// </summary>
    public TimeSpan StreamOpenTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// Slowest an absolute-form client may send a request body or read a response while the proxy waits on it, in bytes
    /// per second, after <see cref="MinClientDataRateGrace"/> (Kestrel's MinRequestBodyDataRate/MinResponseDataRate; time
    /// the proxy spends waiting on the tunnel does not count). 0 turns the check off.
    /// </summary>
    public double MinClientDataRate { get; init; } = 240;

    /// <summary>Grace before <see cref="MinClientDataRate"/> applies to a request or response.</summary>
    public TimeSpan MinClientDataRateGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A CONNECT tunnel with no bytes either way for this long is reset with RST(IdleTimeout) (0 = never).</summary>
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Optional server-side destination policy, checked before a stream is opened (403 when it says no). Empty: only
    /// the agent's allow-list decides. See <see cref="Policy.DestinationPolicy"/>.
    /// </summary>
    public List<DestinationRule> DestinationPolicy { get; init; } = [];
}

/// <summary>Which targets sessions matching <see cref="Sessions"/> may reach (<c>host:port</c> patterns, as the agent's <c>--allow</c>).</summary>
public sealed class DestinationRule
{
    /// <summary>Session name pattern with <c>*</c> wildcards, e.g. <c>team-a-*</c>.</summary>
    public string Sessions { get; set; } = "*";

    /// <summary>Target patterns, e.g. <c>*.internal:443</c>, <c>localhost:3000-3999</c>.</summary>
    public List<string> Allow { get; set; } = [];
}
