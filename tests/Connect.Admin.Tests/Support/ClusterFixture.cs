using Akka.Actor;
using Akka.Cluster;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.Admin.Tests.Support;

/// <summary>
/// A live two-node cluster with agents attached: "alpha" and "gamma" on node 1, "beta" on node 2, and the private apps.
/// Node 1's log lines are captured. Tests that change the cluster (drain, kick) use <see cref="DrainClusterFixture"/>.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public static readonly string[] Sessions = ["alpha", "beta", "gamma"];

    public CapturingLoggerProvider Logs { get; } = new();

    public TestTargets Targets { get; private set; } = null!;

    public TestNode Node1 { get; private set; } = null!;

    public TestNode Node2 { get; private set; } = null!;

    private readonly List<TestAgent> _agents = [];

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        var node1Settings = AdminApi.Settings;
        node1Settings["Logging:LogLevel:Connect"] = "Information"; // the proxy's failure lines are Information
        Node1 = await TestNode.StartAsync(settings: node1Settings, configure: b => b.Logging.AddProvider(Logs));
        Node2 = await TestNode.StartAsync(seeds: [Node1.Address], settings: AdminApi.Settings);
        await WaitMembersUpAsync([Node1, Node2], 2);
        _agents.Add(await TestAgent.StartAsync("alpha", [Node1.TunnelUri]));
        _agents.Add(await TestAgent.StartAsync("beta", [Node2.TunnelUri]));
        _agents.Add(await TestAgent.StartAsync("gamma", [Node1.TunnelUri]));
    }

    public static async Task WaitMembersUpAsync(IEnumerable<TestNode> nodes, int count)
    {
        foreach (var node in nodes)
        {
            var cluster = Cluster.Get(node.Services.GetRequiredService<ActorSystem>());
            await Eventually.AssertAsync(() =>
            {
                Assert.Equal(count, cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(30));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }
        await Node2.DisposeAsync();
        await Node1.DisposeAsync();
        await Targets.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "two-node cluster";
}

/// <summary>Its own two-node cluster for the tests that drain a node or move links: "mover" on node 2 (with node 1 as its fallback), "kicked" on node 1.</summary>
public sealed class DrainClusterFixture : IAsyncLifetime
{
    public TestNode Node1 { get; private set; } = null!;

    public TestNode Node2 { get; private set; } = null!;

    public TestAgent Mover { get; private set; } = null!;

    public TestAgent Kicked { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Node1 = await TestNode.StartAsync(settings: AdminApi.Settings);
        Node2 = await TestNode.StartAsync(seeds: [Node1.Address], settings: AdminApi.Settings);
        await ClusterFixture.WaitMembersUpAsync([Node1, Node2], 2);
        Mover = await TestAgent.StartAsync("mover", [Node2.TunnelUri, Node1.TunnelUri]);
        Kicked = await TestAgent.StartAsync("kicked", [Node1.TunnelUri]);
    }

    public async Task DisposeAsync()
    {
        await Mover.DisposeAsync();
        await Kicked.DisposeAsync();
        await Node2.DisposeAsync();
        await Node1.DisposeAsync();
    }
}
