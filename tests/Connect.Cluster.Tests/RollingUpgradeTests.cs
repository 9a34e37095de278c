using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Connect.Actors.Sessions;
using Connect.Host.Configuration;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// A rolling upgrade is two builds in one cluster. Each node reports its build as Akka's app-version, and sharding
/// does not rebalance while the versions differ (a shard moved onto an old node would only move again when that
/// node is replaced). Two clusters run side by side, identical but for the joining node's version: the one with one
/// version rebalances (proving the rebalance would happen in the time watched), the mixed one does not.
/// </summary>
public sealed class RollingUpgradeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // Rebalance rounds every second instead of every ten, so the control cluster moves shards soon.
    private const string FastRebalance = "akka.cluster.sharding.rebalance-interval = 1s";

    private static Dictionary<string, string?> Settings(string? appVersion = null) => new()
    {
        ["Connect:Cluster:Hocon"] = FastRebalance + (appVersion is null ? "" : $"\nakka.cluster.app-version = \"{appVersion}\""),
    };

    private static async Task<int> ShardsOnAsync(TestNode node)
    {
        var region = node.Services.GetRequiredService<IRequiredActor<SessionRegion>>().ActorRef;
        var state = await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(10));
        return state.Shards.Count;
    }

    [Fact]
    public async Task Each_node_reports_its_build_as_app_version_and_shards_do_not_rebalance_while_versions_differ()
    {
        var build = RollingUpgradeSetup.AppVersion(typeof(RollingUpgradeSetup).Assembly);
        Assert.Matches(@"^\d+\.\d+\.\d+", build);
        var nodes = new List<TestNode>();
        try
        {
            // Two one-node clusters of this build, each holding 20 sessions' shards.
            var mixedOld = await TestNode.StartAsync(settings: Settings());
            var sameOld = await TestNode.StartAsync(settings: Settings());
            nodes.AddRange([mixedOld, sameOld]);
            for (var i = 0; i < 20; i++)
            {
                await mixedOld.GetSessionAsync($"upgrade-{i}");
                await sameOld.GetSessionAsync($"upgrade-{i}");
            }
            var shardsBefore = await ShardsOnAsync(mixedOld);
            Assert.Equal(shardsBefore, await ShardsOnAsync(sameOld));
            Assert.True(shardsBefore >= 10, $"20 sessions landed in only {shardsBefore} shards");

            // A newer build joins one cluster, the same build joins the other.
            var mixedNew = await TestNode.StartAsync(seeds: [mixedOld.Address], settings: Settings(appVersion: "999.0.0"));
            var sameNew = await TestNode.StartAsync(seeds: [sameOld.Address], settings: Settings());
            nodes.AddRange([mixedNew, sameNew]);
            await mixedOld.WaitMembersUpAsync(2, Bound);
            await sameOld.WaitMembersUpAsync(2, Bound);

            var members = Akka.Cluster.Cluster.Get(mixedOld.Services.GetRequiredService<ActorSystem>()).State.Members;
            Assert.Equal(build, members.Single(m => m.Address.ToString() == mixedOld.Address).AppVersion.Version);
            Assert.Equal("999.0.0", members.Single(m => m.Address.ToString() == mixedNew.Address).AppVersion.Version);

            // The control cluster rebalances some shards to its new node...
            var moved = 0;
            await Eventually.UntilAsync(() => (moved = shardsBefore - ShardsOnAsync(sameOld).GetAwaiter().GetResult()) >= 2, "shards rebalanced within one version", Bound);
            output.WriteLine($"one version: {moved} of {shardsBefore} shards moved to the new node");
            // ...and a few more rounds later the mixed cluster still has every shard where it was.
            await Eventually.UntilAsync(() => shardsBefore - ShardsOnAsync(sameOld).GetAwaiter().GetResult() >= moved + 2, "a further rebalance round within one version", Bound);
            Assert.Equal(shardsBefore, await ShardsOnAsync(mixedOld));
        }
        finally
        {
            foreach (var node in Enumerable.Reverse(nodes))
            {
                await node.DisposeAsync();
            }
        }
    }
}
