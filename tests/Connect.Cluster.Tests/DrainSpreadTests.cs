using Connect.Bench.Sim;
using Connect.Host.Draining;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// A drain of many agents spreads them over the peers instead of sending every one to the newest member: three nodes,
/// 100 simulated agents all on the oldest, which drains; the agents follow their first suggestion (as connect-client
/// does) and end up split between the two peers, which held no links before.
/// </summary>
public sealed class DrainSpreadTests(ITestOutputHelper output)
{
    private const int Sessions = 100;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_drain_of_many_agents_spreads_them_over_the_peers_by_their_room()
    {
        // Fixed tunnel ports: a node advertises its tunnel URL (the GOAWAY suggestion) only when its port is known.
        await using var node1 = await TestNode.StartAsync(tunnelPort: FreePorts.Next());
        await using var node2 = await TestNode.StartAsync(seeds: [node1.Address], tunnelPort: FreePorts.Next());
        await node1.WaitMembersUpAsync(2, Bound);
        await using var node3 = await TestNode.StartAsync(seeds: [node1.Address], tunnelPort: FreePorts.Next());
        await node1.WaitMembersUpAsync(3, Bound);

        await using var simulator = new AgentSimulator(new SimulatorOptions
        {
            Servers = [node1.TunnelUri, node2.TunnelUri, node3.TunnelUri],
            Token = TestNode.Token,
            Sessions = Sessions,
            SessionPrefix = "spread",
            StartServer = 0,
            DialJitter = TimeSpan.FromMilliseconds(500),
        });
        simulator.Start();
        await simulator.WaitConnectedAsync(Bound);
        await Eventually.UntilAsync(() => node1.Links.Count == Sessions, "every link registered on node 1", Bound);

        var lifecycle = node1.Services.GetRequiredService<NodeLifecycle>();
        var drain = lifecycle.DrainAsync("spread test", CancellationToken.None);
        await Eventually.UntilAsync(() => node1.Links.Count == 0 && node2.Links.Count + node3.Links.Count == Sessions, "every session re-linked on nodes 2 and 3", Bound);
        output.WriteLine($"after the drain: node 2 {node2.Links.Count} links, node 3 (newest) {node3.Links.Count}");

        // Equal room on both peers: about half each (a binomial's standard deviation is 5 here; before, the newest got all 100).
        Assert.InRange(node2.Links.Count, 25, 75);
        Assert.InRange(node3.Links.Count, 25, 75);
        await drain.WaitAsync(Bound);
    }
}
