namespace Connect.Client;

/// <summary>Everything the agent needs to run; built from the command line by <see cref="AgentCommandLine"/>.</summary>
public sealed record AgentOptions
{
    /// <summary>Tunnel endpoints of the cluster's nodes (ws://, wss://, http:// or https://); any node serves any session.</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }

    public required string Session { get; init; }

    public required string Token { get; init; }

    public AllowList Allow { get; init; } = AllowList.Default;

    /// <summary>How target names become addresses (the system's resolver; a hosts file first with CONNECT_CLIENT_HOSTS_FILE; a fake in tests).</summary>
    public IHostResolver Resolver { get; init; } = SystemHostResolver.Instance;

    /// <summary>How many links to hold at once, each to a different node when the server list allows.</summary>
    public int Links { get; init; } = 1;

    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(45);

    public TimeSpan ReconnectMinDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>On stop, how long open streams may take to finish before their links are closed anyway.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan StatusInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Accept any server certificate (development only; printed loudly at start-up).</summary>
    public bool InsecureSkipVerify { get; init; }

    /// <summary>A PEM file with the CA that signed the server's certificate, instead of the system roots.</summary>
    public string? CaFile { get; init; }

    public int MaxStreamsPerLink { get; init; } = 1024;

    /// <summary>
    /// Host suffixes (e.g. <c>.connect.example.com</c>) whose servers a GOAWAY may send the agent to, beside the hosts of
    /// <see cref="Servers"/>. Suggestions elsewhere are not followed: a drain must never take the token somewhere new.
    /// </summary>
    public IReadOnlyList<string> FollowSuffixes { get; init; } = [];

    /// <summary>After a server refuses the agent (400/401/403), it is not tried again for about this long (doubling, jittered).</summary>
    public TimeSpan RefusalBackoff { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan RefusalBackoffMax { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The agent stops only when every configured server has refused it this many times in a row.</summary>
    public int RefusalsBeforeExit { get; init; } = 3;
}
