using Akka.Actor;
using Akka.Cluster;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.Cluster.Tests;

/// <summary>
/// The downing choice for rolling restarts (docs/OPERATIONS.md, "Downing during a rolling restart: surge"): the
/// replacement joins before the old node drains, so the cluster never drops to two members and a crash inside the
/// restart leaves a keep-majority survivor side that keeps serving.
/// </summary>
public sealed class DowningWindowTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private static Akka.Cluster.Cluster ClusterOf(TestNode node) => Akka.Cluster.Cluster.Get(node.Services.GetRequiredService<ActorSystem>());

    [Fact]
    public async Task With_surge_a_node_crashing_while_another_is_replaced_leaves_a_majority_that_keeps_serving()
    {
        await using var targets = await TestTargets.StartAsync();
        var settings = TestNode.CrashableSettings(holdTimeout: TimeSpan.FromSeconds(20));
        var nodes = (await ThreeNodeCluster.StartAsync(3, settings)).ToList();
        try
        {
            // Surge: the replacement of node 3 joins first...
            var replacement = await TestNode.StartAsync(seeds: [nodes[0].Address], settings: settings);
            nodes.Add(replacement);
            await nodes[0].WaitMembersUpAsync(4, Bound);
            // ...then node 3 drains and leaves: the restart window has three members, not two.
            var old = nodes[2];
            await old.StopAsync();
            await Eventually.UntilAsync(() => ClusterOf(nodes[0]).State.Members.Count == 3, "node 3 removed after its leave", Bound);

            // A crash inside the window: node 2 dies.
            var crashed = nodes[1];
            await crashed.CrashAsync();

            // Keep-majority: 2 of 3 remain, so the survivors down node 2 and stay Up themselves.
            var survivors = new[] { nodes[0], replacement };
            await Eventually.UntilAsync(
                () => survivors.All(s => ClusterOf(s).State.Members.Count == 2 && ClusterOf(s).State.Unreachable.Count == 0),
                "the survivors downed and removed the crashed node",
                Bound);
            Assert.All(survivors, s => Assert.Equal(MemberStatus.Up, ClusterOf(s).SelfMember.Status));

            // And they serve: an agent on the replacement, a request through node 1.
            await using var agent = await TestAgent.StartAsync("surge", [replacement.TunnelUri]);
            using var client = ProxyClient.Http(nodes[0].ProxyPort, "surge");
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
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
