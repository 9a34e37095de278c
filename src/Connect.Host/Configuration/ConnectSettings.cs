using Connect.Actors.Sessions;
using Connect.Proxy.Configuration;

namespace Connect.Host.Configuration;

/// <summary>
/// Everything a node is configured with, bound from the <c>Connect</c> section of appsettings.json,
/// environment variables (<c>Connect__Proxy__Port=8080</c>) and the command line (<c>--proxy-port 8080</c>).
/// </summary>
public sealed class ConnectSettings
{
    public const string Section = "Connect";

    /// <summary>
    /// The default address of the public and the cluster listeners (each may be set apart: <see cref="PublicBind"/>,
    /// <see cref="ClusterSettings.Bind"/>); 127.0.0.1 by default so a development node is not exposed.
    /// </summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>Address of the public listeners, the proxy and the agents' tunnel (e.g. 0.0.0.0). Unset: <see cref="BindAddress"/>.</summary>
    public string? PublicBind { get; set; }

    /// <summary>How agents (and, unless <see cref="ClusterSettings.PublicHost"/> says otherwise, other nodes) reach this node; defaults to the public bind address.</summary>
    public string? PublicHost { get; set; }

    public TunnelSettings Tunnel { get; set; } = new();

    public ProxyListenerSettings Proxy { get; set; } = new();

    public AdminSettings Admin { get; set; } = new();

    public ClusterSettings Cluster { get; set; } = new();

    public SessionSettings Sessions { get; set; } = new();

    public AuthSettings Auth { get; set; } = new();

    public DrainSettings Drain { get; set; } = new();

    /// <summary>Where the proxy and tunnel listeners bind.</summary>
    public string PublicBindAddress => string.IsNullOrWhiteSpace(PublicBind) ? BindAddress : PublicBind;

    /// <summary>Where Akka.Remote and the node data channel bind: the private side.</summary>
    public string ClusterBindAddress => string.IsNullOrWhiteSpace(Cluster.Bind) ? BindAddress : Cluster.Bind;

    /// <summary>
    /// Where the admin API binds: <see cref="AdminSettings.Bind"/>, else loopback. The default bind address is kept when
    /// it is a loopback address itself (127.0.0.2 in a local cluster), never when it is a network address: the admin
    /// API drains and downs nodes, so it is reachable from the network only when configured so.
    /// </summary>
    public string AdminBindAddress =>
        !string.IsNullOrWhiteSpace(Admin.Bind) ? Admin.Bind
        : System.Net.IPAddress.TryParse(BindAddress, out var bind) && System.Net.IPAddress.IsLoopback(bind) ? BindAddress
        : "127.0.0.1";

    /// <summary>How agents reach this node: <see cref="PublicHost"/>, else the public bind address.</summary>
    public string AdvertisedHost => string.IsNullOrWhiteSpace(PublicHost) ? PublicBindAddress : PublicHost;

    /// <summary>
    /// How other nodes reach this node's Akka.Remote and data channel: <see cref="ClusterSettings.PublicHost"/>, else a
    /// specific <see cref="ClusterSettings.Bind"/> address, else <see cref="AdvertisedHost"/> (the behaviour before the
    /// binds were split, so an existing configuration keeps its cluster addresses).
    /// </summary>
    public string ClusterAdvertisedHost =>
        !string.IsNullOrWhiteSpace(Cluster.PublicHost) ? Cluster.PublicHost
        : !string.IsNullOrWhiteSpace(Cluster.Bind) && !IsAnyAddress(Cluster.Bind) ? Cluster.Bind
        : AdvertisedHost;

    /// <summary>Where the admin API is reached: its bind address, or the advertised host when it binds every interface.</summary>
    public string AdminAdvertisedHost => IsAnyAddress(AdminBindAddress) ? AdvertisedHost : AdminBindAddress;

    private static bool IsAnyAddress(string address) =>
        System.Net.IPAddress.TryParse(address, out var ip) && (ip.Equals(System.Net.IPAddress.Any) || ip.Equals(System.Net.IPAddress.IPv6Any));
}

public sealed class TunnelSettings
{
    /// <summary>Port of the agents' WebSocket endpoint (<c>/v1/tunnel</c>); 0 picks a free port.</summary>
    public int Port { get; set; } = 7070;

    public int MaxStreamsPerLink { get; set; } = 1024;

    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>The URL agents should use to reach this node (suggested in GOAWAY by other nodes); default ws://PublicHost:Port.</summary>
    public string? PublicUrl { get; set; }

    /// <summary>Largest WebSocket message accepted from an agent.</summary>
    public int MaxMessageSize { get; set; } = 1024 * 1024;

    /// <summary>Serve the tunnel endpoint over TLS (wss://) with this certificate; empty <see cref="CertificateSettings.Path"/>: plain ws://.</summary>
    public CertificateSettings Certificate { get; set; } = new();
}

/// <summary>
/// A listener's certificate: a PFX/PKCS#12 file (<see cref="Path"/> ending .pfx or .p12, <see cref="Password"/> if any), or a
/// PEM certificate (chain) at <see cref="Path"/> with its PEM private key at <see cref="KeyPath"/> (encrypted with <see cref="Password"/> if given).
/// </summary>
public sealed class CertificateSettings
{
    public string? Path { get; set; }

    public string? KeyPath { get; set; }

    public string? Password { get; set; }

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Path);
}

public sealed class ProxyListenerSettings
{
    /// <summary>Port of the HTTP forward proxy; 0 picks a free port.</summary>
    public int Port { get; set; } = 7080;

    public ProxyOptions Options { get; set; } = new();

    /// <summary>One structured log line per proxied request and CONNECT tunnel (event 2010, category Connect.Proxy.AccessLog).</summary>
    public bool AccessLog { get; set; } = true;

    /// <summary>Serve the proxy over TLS (clients use an https:// proxy URL) with this certificate; empty: plain http://.</summary>
    public CertificateSettings Certificate { get; set; } = new();
}

public sealed class AdminSettings
{
    /// <summary>Address of the admin API and health endpoints. Unset: loopback (see <see cref="ConnectSettings.AdminBindAddress"/>).</summary>
    public string? Bind { get; set; }

    /// <summary>Port of the admin API and health endpoints (9110, as pbm uses); 0 picks a free port.</summary>
    public int Port { get; set; } = 9110;

    /// <summary>Bearer token for the admin API (<c>/v1/*</c>). Unset: only a development node (no Connect:Auth:Tokens) opens it, with the development token.</summary>
    public string? Token { get; set; }

    /// <summary>How long a cluster-wide view waits for each node's answer.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the live feed (<c>GET /v1/events</c>) samples the cluster while someone watches it.</summary>
    public TimeSpan LiveInterval { get; set; } = TimeSpan.FromSeconds(1);
}

public sealed class ClusterSettings
{
    /// <summary>The actor system's name; every node of one cluster uses the same.</summary>
    public string SystemName { get; set; } = "connect";

    /// <summary>Address of Akka.Remote and the node data channel: a private interface. Unset: <see cref="ConnectSettings.BindAddress"/>.</summary>
    public string? Bind { get; set; }

    /// <summary>How other nodes reach this one (Akka address, data channel), when neither <see cref="Bind"/> nor the public host is it (NAT, containers).</summary>
    public string? PublicHost { get; set; }

    /// <summary>Akka.Remote port; 0 picks a free port (tests).</summary>
    public int Port { get; set; } = 7090;

    /// <summary>Seed node addresses (akka.tcp://connect@host:port). Empty: this node forms a cluster of its own (or bootstraps, see <see cref="Bootstrap"/>).</summary>
    public List<string> SeedNodes { get; set; } = [];

    /// <summary>Cluster bootstrap through Akka.Management and Akka.Discovery, instead of <see cref="SeedNodes"/>.</summary>
    public BootstrapSettings Bootstrap { get; set; } = new();

    public List<string> Roles { get; set; } = [];

    /// <summary>
    /// How long the cluster must be stable before the split-brain resolver downs unreachable nodes (keep-majority).
    /// Shorter recovers sessions faster after a crash; too short downs nodes during a GC pause or a network blip.
    /// </summary>
    public TimeSpan DowningStableAfter { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Extra HOCON appended last, for settings without a typed option (see cluster-config/).</summary>
    public string? Hocon { get; set; }

    /// <summary>Port of the node-to-node data channel (plain TCP, or TLS with the cluster certificate); 0 picks a free port.</summary>
    public int DataPort { get; set; } = 7091;

    /// <summary>
    /// Shared secret that authenticates node-to-node data channels (HMAC challenge). Every node of a cluster uses the
    /// same. Empty: a development secret is used, allowed only in development mode (no tokens configured).
    /// </summary>
    public string DataSecret { get; set; } = "";

    /// <summary>How long a connection to the data port may take to authenticate (TLS and HMAC) before it is closed.</summary>
    public TimeSpan DataHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The cluster certificate: when set, Akka.Remote and the node data channel run over TLS, every node presents this
    /// certificate and accepts only peers presenting the same (mutual authentication). Empty: plain TCP (keep the cluster
    /// bind on a private network).
    /// </summary>
    public CertificateSettings Certificate { get; set; } = new();
}

public sealed class AuthSettings
{
    /// <summary>Tokens for agents and proxy clients. Empty: development mode with <see cref="DevelopmentToken"/>.</summary>
    public List<TokenEntry> Tokens { get; set; } = [];

    /// <summary>The well-known development token accepted only while no tokens are configured. Not a secret.</summary>
    public string DevelopmentToken { get; set; } = "dev-token-not-secret";

    /// <summary>Development mode refuses to bind a non-loopback address unless this is set.</summary>
    public bool AllowDevelopmentTokenOnNetwork { get; set; }
}

/// <summary>One credential: give either <see cref="Token"/> (hashed at start-up) or <see cref="Sha256"/> (hex of the token's SHA-256).</summary>
public sealed class TokenEntry
{
    public string Name { get; set; } = "";

    public string? Token { get; set; }

    public string? Sha256 { get; set; }

    // No defaults in the lists themselves: the configuration binder appends to a list's initial items, so a default
    // of ["*"] turned Sessions = ["team-a-*"] into ["*", "team-a-*"] (every session). Both lists are required:
    // TokenStore refuses an entry without them, naming it.

    /// <summary>Session name patterns this token may use (<c>*</c> wildcards), e.g. <c>team-a-*</c>. Required; <c>*</c> (every session) logs a warning.</summary>
    public List<string> Sessions { get; set; } = [];

    /// <summary>"agent" (may attach links), "proxy" (may send proxy requests), or both. Required.</summary>
    public List<string> Scopes { get; set; } = [];
}

public sealed class DrainSettings
{
    /// <summary>Streams still open this long after a drain starts are reset, counted and logged.</summary>
    public TimeSpan Deadline { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long the proxy port keeps accepting new connections after readiness turns 503, so load balancers
    /// notice before the port refuses (the deadline still bounds the whole drain).
    /// </summary>
    public TimeSpan ProxyGrace { get; set; } = TimeSpan.FromSeconds(5);
}
