using Akka.Actor;
using Akka.Cluster;
using Connect.Host;
using Connect.Host.Configuration;
using Connect.Host.Tunnels;
using Connect.Routing.Links;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.Testing;

/// <summary>A real Connect node in this process: Kestrel on loopback ports, Akka remoting on a loopback port.</summary>
public sealed class TestNode : IAsyncDisposable
{
    public const string Token = "test-token-0123456789";

    /// <summary>The node-channel secret every test node shares (at least 32 characters, as a node requires).</summary>
    public const string DataSecret = "test-data-secret-0123456789abcdef";

    private TestNode(WebApplication app) => App = app;

    public WebApplication App { get; }

    public IServiceProvider Services => App.Services;

    public NodeIdentity Identity => Services.GetRequiredService<NodeIdentity>();

    public Listeners Listeners => Services.GetRequiredService<Listeners>();

    public int ProxyPort => Listeners.ProxyPort;

    public int TunnelPort => Listeners.TunnelPort;

    public int AdminPort => Listeners.AdminPort;

    public Uri TunnelUri => new($"ws://127.0.0.1:{TunnelPort}/v1/tunnel");

    public string Address => Akka.Cluster.Cluster.Get(Services.GetRequiredService<ActorSystem>()).SelfAddress.ToString();

    public LinkRegistry Links => Services.GetRequiredService<LinkRegistry>();

    /// <summary>Starts a node; <paramref name="seeds"/> empty forms a cluster of one. Ports are free ones unless given.</summary>
    public static async Task<TestNode> StartAsync(IEnumerable<string>? seeds = null, IDictionary<string, string?>? settings = null, int tunnelPort = 0, int proxyPort = 0, Action<WebApplicationBuilder>? configure = null, LogCapture? logs = null, bool waitUp = true)
    {
        var overrides = new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Port"] = tunnelPort.ToString(),
            ["Connect:Proxy:Port"] = proxyPort.ToString(),
            ["Connect:Admin:Port"] = "0",
            ["Connect:Cluster:Port"] = "0",
            ["Connect:Cluster:DataPort"] = "0",
            ["Connect:Sessions:HoldTimeout"] = "00:00:03",
            ["Connect:Drain:Deadline"] = "00:00:10",
            ["Connect:Auth:Tokens:0:Name"] = "tests",
            ["Connect:Auth:Tokens:0:Token"] = Token,
            ["Connect:Auth:Tokens:0:Sessions:0"] = "*",
            ["Connect:Auth:Tokens:0:Scopes:0"] = "agent",
            ["Connect:Auth:Tokens:0:Scopes:1"] = "proxy",
            ["Connect:Cluster:DataSecret"] = DataSecret,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Akka"] = "Warning",
        };
        var index = 0;
        foreach (var seed in seeds ?? [])
        {
            overrides[$"Connect:Cluster:SeedNodes:{index++}"] = seed;
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            overrides[key] = value;
        }
        var app = ConnectNode.Build([], overrides, builder =>
        {
            if (logs is not null)
            {
                builder.Logging.AddProvider(logs);
            }
            configure?.Invoke(builder);
        });
        await app.StartAsync();
        var node = new TestNode(app);
        if (waitUp)
        {
            await node.WaitUpAsync(TimeSpan.FromSeconds(30));
        }
        return node;
    }

    public async Task WaitUpAsync(TimeSpan timeout)
    {
        var cluster = Akka.Cluster.Cluster.Get(Services.GetRequiredService<ActorSystem>());
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        await up.Task.WaitAsync(timeout);
    }

    /// <summary>Waits until this node sees <paramref name="count"/> members Up.</summary>
    public async Task WaitMembersUpAsync(int count, TimeSpan timeout)
    {
        var cluster = Akka.Cluster.Cluster.Get(Services.GetRequiredService<ActorSystem>());
        await Eventually.UntilAsync(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up) == count, $"{count} members Up", timeout);
    }

    /// <summary>Asks the session entity (through this node's shard region) for its state.</summary>
    public Task<Connect.Actors.Protocol.SessionSnapshot> GetSessionAsync(string session) =>
        Services.GetRequiredService<Akka.Hosting.IRequiredActor<Connect.Actors.Sessions.SessionRegion>>().ActorRef
            .Ask<Connect.Actors.Protocol.SessionSnapshot>(new Connect.Actors.Protocol.GetSession(session), TimeSpan.FromSeconds(15));

    /// <summary>
    /// A session name (PREFIX-0, PREFIX-1, ...) whose entity this node's region places on <paramref name="wanted"/>.
    /// Waits first until <paramref name="wanted"/>'s region is registered with the coordinator: a region that registers
    /// late finds every shard already allocated elsewhere (the first few hundred names cover all of them), and no name
    /// would ever land on it.
    /// </summary>
    public async Task<string> SessionWithEntityOnAsync(TestNode wanted, string prefix, TimeSpan bound)
    {
        var region = Akka.Cluster.Sharding.ClusterSharding.Get(Services.GetRequiredService<ActorSystem>()).ShardRegion(Connect.Actors.Sessions.SessionRegion.TypeName);
        await Eventually.AssertAsync(async () =>
        {
            var stats = await region.Ask<Akka.Cluster.Sharding.ClusterShardingStats>(new Akka.Cluster.Sharding.GetClusterShardingStats(TimeSpan.FromSeconds(3)), TimeSpan.FromSeconds(5));
            Xunit.Assert.Contains(wanted.Address, stats.Regions.Keys.Select(a => a.ToString()));
        }, bound);
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 5000 && started.Elapsed < TimeSpan.FromSeconds(30); i++)
        {
            var snapshot = await GetSessionAsync($"{prefix}-{i}");
            if (snapshot.EntityNode == wanted.Address)
            {
                return snapshot.SessionId;
            }
        }
        throw new InvalidOperationException($"no session name placed its entity on {wanted.Address} within 30 s");
    }

    /// <summary>
    /// Kills the node as a crash would: every socket dropped (Kestrel, agent links, node channels) and the actor
    /// system terminated without leaving the cluster. Needs <see cref="CrashableSettings"/> so termination does
    /// not run the graceful leave.
    /// </summary>
    public async Task CrashAsync()
    {
        foreach (var link in Links.All)
        {
            link.Mux.Abort("node crashed");
        }
        Services.GetRequiredService<Connect.Routing.NodeChannel.NodeChannelServer>().Abort();
        await Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().StopAsync(new CancellationToken(canceled: true));
        await Services.GetRequiredService<ActorSystem>().Terminate();
    }

    /// <summary>Settings for a cluster whose nodes may be crashed: termination skips the leave, downing is quick.</summary>
    public static Dictionary<string, string?> CrashableSettings(TimeSpan holdTimeout) => new()
    {
        ["Connect:Cluster:Hocon"] = "akka.coordinated-shutdown.run-by-actor-system-terminate = off\nakka.cluster.failure-detector.acceptable-heartbeat-pause = 2s\nakka.cluster.failure-detector.heartbeat-interval = 500ms",
        ["Connect:Cluster:DowningStableAfter"] = "00:00:02",
        ["Connect:Sessions:HoldTimeout"] = holdTimeout.ToString("c"),
    };

    public async Task StopAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await App.StopAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (ObjectDisposedException)
        {
            // Already stopped by the test.
        }
        await App.DisposeAsync();
    }
}
