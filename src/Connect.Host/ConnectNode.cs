using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Connect.Actors.Sessions;
using Connect.Host.Admin;
using Connect.Host.Bootstrap;
using Connect.Host.Configuration;
using Connect.Host.Draining;
using Connect.Host.Health;
using Connect.Host.Security;
using Connect.Host.Tunnels;
using Connect.Proxy;
using Connect.Proxy.Configuration;
using Connect.Proxy.Forwarding;
using Connect.Routing;
using Connect.Routing.Links;
using Connect.Routing.NodeChannel;
using Connect.Routing.Security;
using Connect.Routing.Streams;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Options;

namespace Connect.Host;

/// <summary>Builds a Connect node: configuration, services, listeners and endpoints. Program.cs and the tests both use it.</summary>
public static class ConnectNode
{
    /// <summary>How long a grant keeps its link in the node's grant cache (refreshed by every grant naming it).</summary>
    private static readonly TimeSpan GrantCacheExpiry = TimeSpan.FromSeconds(30);

    /// <summary>Short command-line switches for the settings a user changes most.</summary>
    internal static readonly Dictionary<string, string> SwitchMappings = new()
    {
        ["--bind"] = "Connect:BindAddress",
        ["--public-bind"] = "Connect:PublicBind",
        ["--cluster-bind"] = "Connect:Cluster:Bind",
        ["--admin-bind"] = "Connect:Admin:Bind",
        ["--public-host"] = "Connect:PublicHost",
        ["--tunnel-port"] = "Connect:Tunnel:Port",
        ["--proxy-port"] = "Connect:Proxy:Port",
        ["--admin-port"] = "Connect:Admin:Port",
        ["--cluster-port"] = "Connect:Cluster:Port",
        ["--data-port"] = "Connect:Cluster:DataPort",
        ["--dev-token"] = "Connect:Auth:DevelopmentToken",
        ["--drain-deadline"] = "Connect:Drain:Deadline",
    };

    /// <param name="configure">Last say over the builder before it builds (tests add log capture here).</param>
    public static WebApplication Build(string[] args, IDictionary<string, string?>? overrides = null, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        // --config FILE layers a JSON file (e.g. cluster-config/local/node2.json) over appsettings.json; the command line still wins.
        var configIndex = Array.IndexOf(args, "--config");
        if (configIndex >= 0)
        {
            if (configIndex + 1 >= args.Length || !File.Exists(args[configIndex + 1]))
            {
                throw new InvalidOperationException($"--config needs an existing JSON file, got '{(configIndex + 1 < args.Length ? args[configIndex + 1] : "")}'");
            }
            builder.Configuration.AddJsonFile(Path.GetFullPath(args[configIndex + 1]), optional: false);
            args = args.Where((_, i) => i != configIndex && i != configIndex + 1).ToArray();
        }
        builder.Configuration.AddCommandLine(ExpandSeeds(args), SwitchMappings);
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }
        var settings = builder.Configuration.GetSection(ConnectSettings.Section).Get<ConnectSettings>() ?? new ConnectSettings();
        Validate(settings);
        // Parsed once here so a malformed destination pattern stops start-up with a message naming it (not the first request).
        _ = new Connect.Proxy.Policy.DestinationPolicy(settings.Proxy.Options.DestinationPolicy);

        var services = builder.Services;
        services.Configure<ConnectSettings>(builder.Configuration.GetSection(ConnectSettings.Section));
        services.AddSingleton(Options.Create(settings.Proxy.Options));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new TokenStore(settings.Auth));
        services.AddHostedService<StartupWarnings>();
        services.AddSingleton<Connect.Proxy.Auth.IProxyAuthenticator>(sp => sp.GetRequiredService<TokenStore>());
        services.AddSingleton<LinkRegistry>();
        // One keep-alive timer for every agent link on the node (docs/SCALING.md: a timer per link cost a thread-pool
        // wake-up per PING); disposed with the host.
        services.AddSingleton(sp => new MuxKeepAliveSweep(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<NodeIdentity>();
        services.AddSingleton<NodeLifecycle>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeLifecycle>());
        // Stop order: drain, then Akka leaves and hands off, then Kestrel stops (the admin listener answers throughout).
        services.AddHostedService<LeaveBeforeKestrelStops>();
        services.AddSingleton(sp => new StreamBroker(
            sp.GetRequiredService<IRequiredActor<SessionRegion>>().ActorRef,
            sp.GetRequiredService<LinkRegistry>(),
            Cluster.Get(sp.GetRequiredService<ActorSystem>()).SelfAddress.ToString(),
            sp.GetService<IRemoteStreamOpener>(),
            settings.Sessions.HoldTimeout + TimeSpan.FromSeconds(10),
            sp.GetRequiredService<ILogger<StreamBroker>>(),
            sp.GetRequiredService<GrantCache>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IPeerLinkFinder>()));
        // The broker's last resort while a session's entity is silent: the other nodes' registries name its live links.
        services.AddSingleton<IPeerLinkFinder>(sp => new PeerLinkFinder(sp.GetRequiredService<ActorSystem>(), sp.GetRequiredService<ILogger<PeerLinkFinder>>()));
        // A service of its own so that the access log can name the node of a granted link (Admin/LinkNodeLocator).
        services.AddSingleton(sp => new GrantCache(sp.GetRequiredService<TimeProvider>(), GrantCacheExpiry));
        services.AddSingleton<ITunnelConnector, TunnelConnector>();
        services.AddSingleton<ProxyMetrics>();
        services.AddSingleton(sp => new AccessLog(settings.Proxy.AccessLog, sp.GetRequiredService<ILogger<AccessLog>>()));
        services.AddSingleton<ProxyDrain>();
        services.AddSingleton<LimitMetrics>();
        services.AddSingleton<ProxyGate>();
        services.AddSingleton<ConnectTunneler>();
        services.AddSingleton<UpstreamClients>();
        services.AddSingleton<ProxyConnectionMiddleware>();
        services.AddSingleton(new NodeChannelSecret(NodeChannelHandshake.SecretBytes(
            string.IsNullOrEmpty(settings.Cluster.DataSecret) ? "development-data-secret-" + settings.Cluster.SystemName : settings.Cluster.DataSecret)));
        services.AddSingleton(sp =>
        {
            var bound = sp.GetRequiredService<IOptions<ConnectSettings>>().Value;
            return new NodeChannelSettings(bound.ClusterBindAddress, bound.Cluster.DataPort, bound.Cluster.DataHandshakeTimeout);
        });
        services.AddSingleton<NodeChannelServer>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeChannelServer>());
        services.AddSingleton<NodeChannelPool>();
        services.AddSingleton<IRemoteStreamOpener>(sp => sp.GetRequiredService<NodeChannelPool>());
        services.AddSingleton<Listeners>();
        // Registered after Kestrel's own socket transport, so Kestrel binds through it (the last factory wins) and a drain can close the proxy and tunnel sockets.
        // 32 KiB receive blocks instead of Kestrel's 4 KiB: 8x fewer receive syscalls and pipe wake-ups per tunnel byte (bench/ANALYSIS.md).
        // Kestrel's socket transport takes its pool from this service (registered after Kestrel's own: the last one wins).
        // One free list for every listener's pools, trimmed of blocks no rent needed for 10 s (idle links pin none).
        services.AddSingleton(sp => new LargeBlockMemoryPoolFactory(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(sp => sp.GetRequiredService<LargeBlockMemoryPoolFactory>());
        services.AddSingleton<Connect.Host.Draining.ClosableListenerFactory>();
        services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(sp => sp.GetRequiredService<Connect.Host.Draining.ClosableListenerFactory>());
        services.AddHostedService<IdentityService>();
        // Loaded here, before anything binds, so a bad path or password stops start-up with a message naming the setting.
        var clusterTls = new ClusterTls(settings.Cluster.Certificate.IsConfigured ? Certificates.Load(settings.Cluster.Certificate, "Connect:Cluster:Certificate") : null);
        services.AddSingleton(clusterTls);
        services.AddConnectCluster(settings, clusterTls);
        services.AddConnectAdmin(settings);
        // The host's shutdown timer must outlast the drain (deadline) plus Akka's leave and hand-off, or it would cut them short.
        services.Configure<HostOptions>(host => host.ShutdownTimeout = settings.Drain.Deadline + settings.Drain.ProxyGrace + TimeSpan.FromSeconds(45));

        builder.WebHost.ConfigureKestrel((context, kestrel) =>
            kestrel.ApplicationServices.GetRequiredService<Listeners>().Configure(kestrel, settings, kestrel.ApplicationServices));
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseWebSockets();
        app.UseMiddleware<ForwardProxyMiddleware>();
        app.MapTunnelEndpoint();
        app.MapHealthEndpoints();
        app.MapAdminApi();
        return app;
    }

    /// <summary>Fills in <see cref="NodeIdentity"/> once every listener is bound (StartedAsync runs after all hosted services started, Kestrel included).</summary>
    private sealed class IdentityService(Listeners listeners, NodeChannelServer channels, NodeIdentity identity, ActorSystem system, IOptions<ConnectSettings> options, AccessLog accessLog) : IHostedLifecycleService
    {
        public Task StartedAsync(CancellationToken cancellationToken)
        {
            var settings = options.Value;
            identity.Address = Cluster.Get(system).SelfAddress.ToString();
            identity.TunnelUrl = AdvertisedUrls.Tunnel(settings, listeners.TunnelPort);
            identity.ProxyUrl = $"{(settings.Proxy.Certificate.IsConfigured ? "https" : "http")}://{AdvertisedUrls.UrlHost(settings.AdvertisedHost)}:{listeners.ProxyPort}";
            identity.AdminUrl = $"http://{AdvertisedUrls.UrlHost(settings.AdminAdvertisedHost)}:{listeners.AdminPort}";
            identity.DataEndpoint = $"{AdvertisedUrls.UrlHost(settings.ClusterAdvertisedHost)}:{channels.Port}";
            accessLog.Node = identity.Address;
            return Task.CompletedTask;
        }

        public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Turns repeated <c>--seed ADDR</c> into indexed configuration keys.</summary>
    private static string[] ExpandSeeds(string[] args)
    {
        var result = new List<string>();
        var seed = 0;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seed" && i + 1 < args.Length)
            {
                result.Add($"--Connect:Cluster:SeedNodes:{seed++}={args[++i]}");
            }
            else
            {
                result.Add(args[i]);
            }
        }
        return result.ToArray();
    }

    /// <summary>The smallest data secret accepted: 32 characters, what 24 random bytes in base64 give (openssl rand -base64 32 gives 44).</summary>
    public const int MinDataSecretLength = 32;

    /// <summary>
    /// Why a data secret must be refused, or null. The example's placeholder (and look-alikes) is refused by name: a
    /// copied example would otherwise run a production cluster on a secret that is printed in the repository.
    /// </summary>
    public static string? DataSecretProblem(string secret)
    {
        var lower = secret.Trim().ToLowerInvariant();
        if (lower.StartsWith("set-me", StringComparison.Ordinal) || lower.StartsWith("change-me", StringComparison.Ordinal) || lower.StartsWith('<')
            || lower.Contains("placeholder", StringComparison.Ordinal) || lower.Contains("connect__cluster__datasecret", StringComparison.Ordinal))
        {
            return "still holds the example's placeholder; set a random secret (e.g. through the environment variable Connect__Cluster__DataSecret)";
        }
        if (secret.Length < MinDataSecretLength)
        {
            return $"is {secret.Length} characters; use at least {MinDataSecretLength} random characters";
        }
        return null;
    }

    private static void Validate(ConnectSettings settings)
    {
        var binds = new[]
        {
            ("Connect:BindAddress", settings.BindAddress),
            ("Connect:PublicBind", settings.PublicBindAddress),
            ("Connect:Cluster:Bind", settings.ClusterBindAddress),
            ("Connect:Admin:Bind", settings.AdminBindAddress),
        };
        foreach (var (setting, value) in binds)
        {
            if (!System.Net.IPAddress.TryParse(value, out _))
            {
                throw new InvalidOperationException($"{setting} '{value}' is not an IP address");
            }
        }
        foreach (var (name, port) in new[] { ("Tunnel", settings.Tunnel.Port), ("Proxy", settings.Proxy.Port), ("Admin", settings.Admin.Port), ("Cluster", settings.Cluster.Port) })
        {
            if (port is < 0 or > 65535)
            {
                throw new InvalidOperationException($"Connect:{name}:Port {port} is outside 0..65535");
            }
        }
        if (settings.Tunnel.Certificate.IsConfigured && settings.Tunnel.PublicUrl is { Length: > 0 } publicUrl && !publicUrl.StartsWith("wss://", StringComparison.OrdinalIgnoreCase))
        {
            // Other nodes suggest this URL to agents in GOAWAY: a plain one would move agents, and their tokens, out of TLS.
            throw new InvalidOperationException($"Connect:Tunnel:PublicUrl '{publicUrl}' must be a wss:// URL: the tunnel listener serves TLS (Connect:Tunnel:Certificate), and a drain sends agents to this URL");
        }
        if (settings.Auth.Tokens.Count > 0 && string.IsNullOrEmpty(settings.Cluster.DataSecret))
        {
            throw new InvalidOperationException("tokens are configured (production mode) but Connect:Cluster:DataSecret is empty; set the same secret on every node so node-to-node data channels are authenticated");
        }
        if (!string.IsNullOrEmpty(settings.Cluster.DataSecret) && DataSecretProblem(settings.Cluster.DataSecret) is { } problem)
        {
            throw new InvalidOperationException($"Connect:Cluster:DataSecret {problem}; generate one with: openssl rand -base64 32 (the same value on every node)");
        }
        if (BootstrapConfiguration.Problem(settings) is { } bootstrapProblem)
        {
            throw new InvalidOperationException(bootstrapProblem);
        }
        var exposed = binds.FirstOrDefault(b => !System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(b.Item2)));
        if (settings.Auth.Tokens.Count == 0 && exposed.Item1 is not null && !settings.Auth.AllowDevelopmentTokenOnNetwork)
        {
            throw new InvalidOperationException(
                $"no tokens are configured (Connect:Auth:Tokens), so only the development token would protect this node, and it binds {exposed.Item2} ({exposed.Item1}), not loopback. Configure tokens (see docs/SECURITY.md) or set Connect:Auth:AllowDevelopmentTokenOnNetwork=true.");
        }
    }
}
