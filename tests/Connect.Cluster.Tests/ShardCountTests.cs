using Akka.Actor;
using Akka.Cluster;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Connect.Cluster.Tests;

/// <summary>
/// The session shard count is fixed for a cluster's life (issue 16): a node configured with another count must not
/// join, or the same session name could map to two shards and get two entities.
/// </summary>
public sealed class ShardCountTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_node_with_another_shard_count_leaves_and_stops_while_the_cluster_keeps_its_count()
    {
        await using var node1 = await TestNode.StartAsync(settings: new Dictionary<string, string?> { ["Connect:Sessions:ShardCount"] = "100" });
        var logs = new LogCapture();
        await using var node2 = await TestNode.StartAsync(
            seeds: [node1.Address],
            settings: new Dictionary<string, string?> { ["Connect:Sessions:ShardCount"] = "60", ["Logging:LogLevel:Connect"] = "Information" },
            logs: logs,
            waitUp: false);
        var stopped = new TaskCompletionSource();
        node2.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopped.TrySetResult());

        await stopped.Task.WaitAsync(Bound);

        Assert.Contains(logs.Lines, l => l.Contains("[4101]") && l.Contains("this node has 60 session shards but cluster member " + node1.Address + " has 100"));
        var cluster1 = Akka.Cluster.Cluster.Get(node1.Services.GetRequiredService<ActorSystem>());
        await Eventually.UntilAsync(() => cluster1.State.Members.Count == 1 && cluster1.State.Unreachable.Count == 0, "node 2 removed from node 1's view", Bound);
        Assert.Equal(MemberStatus.Up, cluster1.SelfMember.Status);
        Assert.Contains("shards-100", cluster1.SelfMember.Roles);
    }

    [Fact]
    public async Task Nodes_with_the_same_configured_shard_count_join_and_advertise_it()
    {
        var settings = new Dictionary<string, string?> { ["Connect:Sessions:ShardCount"] = "30" };
        await using var node1 = await TestNode.StartAsync(settings: settings);
        await using var node2 = await TestNode.StartAsync(seeds: [node1.Address], settings: settings);

        await node1.WaitMembersUpAsync(2, Bound);
        var cluster1 = Akka.Cluster.Cluster.Get(node1.Services.GetRequiredService<ActorSystem>());
        Assert.All(cluster1.State.Members, m => Assert.Contains("shards-30", m.Roles));
        // The count reaches the extractor: 60 session names land on shards 0-29 only.
        for (var i = 0; i < 60; i++)
        {
            await node2.GetSessionAsync($"shard-count-{i}");
        }
        var stats = await Akka.Cluster.Sharding.ClusterSharding.Get(node1.Services.GetRequiredService<ActorSystem>())
            .ShardRegion(Connect.Actors.Sessions.SessionRegion.TypeName)
            .Ask<Akka.Cluster.Sharding.ClusterShardingStats>(new Akka.Cluster.Sharding.GetClusterShardingStats(TimeSpan.FromSeconds(10)), TimeSpan.FromSeconds(15));
        var shards = stats.Regions.Values.SelectMany(r => r.Stats.Keys).Select(int.Parse).ToList();
        Assert.True(shards.Count > 10, $"only {shards.Count} shards in use");
        Assert.All(shards, s => Assert.InRange(s, 0, 29));
    }
}
