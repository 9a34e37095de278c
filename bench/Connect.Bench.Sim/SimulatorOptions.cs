namespace Connect.Bench.Sim;

/// <summary>What to simulate: how many sessions, links per session, which nodes, and how the agents behave.</summary>
public sealed record SimulatorOptions
{
    /// <summary>Tunnel URLs of the nodes (<c>ws://host:port/v1/tunnel</c>); link k of session s starts at server (s + k) mod n.</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }

    public required string Token { get; init; }

    public int Sessions { get; init; } = 100;

    public int LinksPerSession { get; init; } = 1;

    /// <summary>
    /// When set, every link's first dial goes to this server (index into <see cref="Servers"/>) instead of spreading
    /// link k of session s over server (s + k) mod n: puts all links on one node (the drain-at-scale run). Redials
    /// after a drop or GOAWAY move on to the next server as usual.
    /// </summary>
    public int? StartServer { get; init; }

    /// <summary>Session names are PREFIX-00000, PREFIX-00001, ...</summary>
    public string SessionPrefix { get; init; } = "sim";

    /// <summary>Each link's first dial waits a random time up to this (the agents' jittered start).</summary>
    public TimeSpan DialJitter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Reconnect backoff: first wait, doubled per failure up to the maximum, each with full jitter (like the agent).</summary>
    public TimeSpan BackoffMin { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most WebSocket handshakes in flight at once (a real fleet's are spread over many machines).</summary>
    public int MaxConcurrentDials { get; init; } = 64;

    /// <summary>
    /// How often each link PINGs the node, as connect-client does (its default, 15 s): a node then skips its own PINGs
    /// on the link (docs/PROTOCOL.md section 5) and answers the agent's with PONGs, so scale runs see the frames a
    /// fleet of real agents sends. Each link has its own timer, like one agent per link, so the PINGs reach the node
    /// spread over the interval, not in bursts. Zero: the link only answers the node's PINGs (the simulator before
    /// this knob, which under-counted real agents' keep-alive work on the node).
    /// </summary>
    public TimeSpan KeepAliveInterval { get; init; } = DefaultKeepAliveInterval;

    /// <summary>Close a link when nothing arrived from the node for this long (connect-client's 45 s default).</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>connect-client's PING interval (<c>AgentOptions.KeepAliveInterval</c>).</summary>
    public static readonly TimeSpan DefaultKeepAliveInterval = TimeSpan.FromSeconds(15);
}
