using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.Cluster.Tests.Support;
using Connect.Testing;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// The deploy the product exists for: every node of a 3-node cluster is drained, leaves, and starts again while
/// 20 sessions carry continuous traffic through all nodes. Zero failed requests, every byte verified. The clients reach
/// the nodes through a load balancer that sees readiness late (probe period x failure threshold), as real ones do.
/// </summary>
public sealed class RollingRestartTests(ITestOutputHelper output)
{
    private const int Sessions = 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan ProbePeriod = TimeSpan.FromSeconds(2);
    private const int ProbeFailureThreshold = 3;

    private static readonly Dictionary<string, string?> DrainSettings = new()
    {
        ["Connect:Drain:Deadline"] = "00:00:40",
        // Longer than the balancer's probe lag (2 s x 3): the node serves until the balancer has stopped sending to it.
        ["Connect:Drain:ProxyGrace"] = "00:00:08",
        ["Connect:Sessions:HoldTimeout"] = "00:00:15",
    };


    [Fact]
    public async Task Every_node_restarts_in_turn_under_traffic_with_zero_failed_requests_and_every_byte_verified()
    {
        await using var targets = await TestTargets.StartAsync();
        var tunnelPorts = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).ToArray();
        var proxyPorts = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).ToArray();
        var nodes = new TestNode?[3];
        nodes[0] = await TestNode.StartAsync(settings: DrainSettings, tunnelPort: tunnelPorts[0], proxyPort: proxyPorts[0]);
        nodes[1] = await TestNode.StartAsync(seeds: [nodes[0]!.Address], settings: DrainSettings, tunnelPort: tunnelPorts[1], proxyPort: proxyPorts[1]);
        nodes[2] = await TestNode.StartAsync(seeds: [nodes[0]!.Address], settings: DrainSettings, tunnelPort: tunnelPorts[2], proxyPort: proxyPorts[2]);
        await Task.WhenAll(nodes.Select(n => n!.WaitMembersUpAsync(3, Bound)));

        var servers = tunnelPorts.Select(p => new Uri($"ws://127.0.0.1:{p}/v1/tunnel")).ToArray();
        var agents = new List<TestAgent>();
        try
        {
            for (var i = 0; i < Sessions; i++)
            {
                // Spread the agents' first links over the nodes.
                agents.Add(await TestAgent.StartAsync($"roll-{i}", servers.Skip(i % 3).Concat(servers.Take(i % 3))));
            }
            await using var balancer = new LoadBalancerEmulator(ProbePeriod, ProbeFailureThreshold);
            for (var i = 0; i < 3; i++)
            {
                balancer.Add(proxyPorts[i], nodes[i]!.AdminPort);
            }
            await Eventually.UntilAsync(() => balancer.ReadyPorts().Count == 3, "every node ready behind the load balancer", Bound);

            var traffic = new MixedTraffic(balancer.Port, targets, "roll", Sessions, Bound);

            for (var i = 0; i < 3; i++)
            {
                var old = nodes[i]!;
                var survivor = nodes[(i + 1) % 3]!;
                var clock = Stopwatch.StartNew();
                await old.StopAsync(); // SIGTERM's path: drain (GOAWAY, grace, wait), then leave, then stop
                var drainedIn = clock.Elapsed;
                balancer.Remove(proxyPorts[i]);
                await old.DisposeAsync();
                var restarted = await TestNode.StartAsync(seeds: [survivor.Address], settings: DrainSettings, tunnelPort: tunnelPorts[i], proxyPort: proxyPorts[i]);
                nodes[i] = restarted;
                balancer.Add(proxyPorts[i], restarted.AdminPort);
                await restarted.WaitMembersUpAsync(3, Bound);
                output.WriteLine($"node {i + 1}: stopped (drain + leave) in {drainedIn.TotalSeconds:0.0} s, back and Up after {clock.Elapsed.TotalSeconds:0.0} s");
            }

            await traffic.StopAsync();
            output.WriteLine(traffic.Summary() + $"; refused connects retried by the balancer: {balancer.RefusedRetries}");
            foreach (var failure in traffic.Failures.Take(20))
            {
                output.WriteLine(failure);
            }
            Assert.Empty(traffic.Failures);
            Assert.All(MixedTraffic.Kinds, kind => Assert.True(traffic.Counts.GetValueOrDefault(kind) > 0, $"no {kind} completed"));
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
            foreach (var node in nodes.Reverse())
            {
                if (node is not null)
                {
                    await node.DisposeAsync();
                }
            }
        }
    }
}
