using System.Diagnostics;
using Connect.Cluster.Tests.Support;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// The usual pipeline for stateful tunnel servers (issue 12, finding 3): three green nodes join a blue cluster, all
/// three blue nodes drain at the same time under load, behind a load balancer that sees readiness late. The agents
/// were started with the blue URLs only; the drain's GOAWAY must send them to green (never to another draining blue
/// node). Zero failed requests, every byte verified, every session linked to green before blue exits.
/// </summary>
public sealed class BlueGreenTests(ITestOutputHelper output)
{
    private const int Sessions = 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Connect:Drain:Deadline"] = "00:00:40",
        // Longer than the balancer's probe lag (2 s x 3).
        ["Connect:Drain:ProxyGrace"] = "00:00:08",
        ["Connect:Sessions:HoldTimeout"] = "00:00:15",
    };


    [Fact]
    public async Task All_blue_nodes_drain_at_once_and_every_session_moves_to_green_with_zero_failed_requests()
    {
        await using var targets = await TestTargets.StartAsync();
        var blue = await ThreeNodeCluster.StartAsync(3, Settings);
        var green = Array.Empty<TestNode>();
        var agents = new List<TestAgent>();
        try
        {
            var blueServers = blue.Select(n => n.TunnelUri).ToArray();
            for (var i = 0; i < Sessions; i++)
            {
                agents.Add(await TestAgent.StartAsync($"bg-{i}", blueServers.Skip(i % 3).Concat(blueServers.Take(i % 3))));
            }
            await using var balancer = new LoadBalancerEmulator(TimeSpan.FromSeconds(2), failureThreshold: 3);
            foreach (var node in blue)
            {
                balancer.Add(node.ProxyPort, node.AdminPort);
            }
            await Eventually.UntilAsync(() => balancer.ReadyPorts().Count == 3, "blue ready behind the balancer", Bound);
            var traffic = new MixedTraffic(balancer.Port, targets, "bg", Sessions, Bound);

            // Green joins and is registered with the balancer.
            // Fixed tunnel ports, as in production: a node advertises its tunnel URL (for GOAWAY suggestions) only when its port is known up front.
            green = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => TestNode.StartAsync(seeds: [blue[0].Address], settings: Settings, tunnelPort: FreePorts.Next())));
            await Task.WhenAll(blue.Concat(green).Select(n => n.WaitMembersUpAsync(6, Bound)));
            foreach (var node in green)
            {
                balancer.Add(node.ProxyPort, node.AdminPort);
            }
            await Eventually.UntilAsync(() => balancer.ReadyPorts().Count == 6, "green ready behind the balancer", Bound);
            await Eventually.UntilAsync(() => traffic.Completed > 20, "traffic flowing before the switch", Bound);

            // Blue drains, all three at once (SIGTERM's path: drain, then leave, then stop).
            var clock = Stopwatch.StartNew();
            var stops = blue.Select(n => n.StopAsync()).ToArray();
            var greenSessions = new Func<HashSet<string>>(() => green.SelectMany(n => n.Links.All.Select(l => l.SessionId)).ToHashSet());
            await Eventually.UntilAsync(() => blue.All(n => n.Services.GetRequiredService<NodeLifecycle>().IsDraining), "blue draining", Bound);
            try
            {
                await Eventually.UntilAsync(() => Enumerable.Range(0, Sessions).All(i => greenSessions().Contains($"bg-{i}")), "every session linked to a green node", Bound);
            }
            catch (TimeoutException)
            {
                foreach (var (node, i) in blue.Select((n, i) => (n, i)))
                {
                    output.WriteLine($"blue {i + 1} suggests: {string.Join(", ", node.Services.GetRequiredService<NodeLifecycle>().SuggestedServers())}");
                }
                output.WriteLine($"green: {string.Join(", ", green.Select(n => n.TunnelUri))}");
                foreach (var agent in agents.Where(a => !greenSessions().Contains(a.Options.Session)))
                {
                    output.WriteLine($"{agent.Options.Session} not on green:\n  " + string.Join("\n  ", agent.Log.TakeLast(15)));
                }
                throw;
            }
            var linkedIn = clock.Elapsed;
            Assert.True(stops.All(s => !s.IsCompleted), "every session was linked to green before a blue node exited");
            await Task.WhenAll(stops).WaitAsync(Bound);
            output.WriteLine($"every session on green after {linkedIn.TotalSeconds:0.0} s; blue gone after {clock.Elapsed.TotalSeconds:0.0} s");
            foreach (var node in blue)
            {
                Assert.Equal(0, node.Services.GetRequiredService<NodeLifecycle>().StreamsResetAtDeadline);
                balancer.Remove(node.ProxyPort);
            }

            // Green alone carries on.
            var before = traffic.Completed;
            await Eventually.UntilAsync(() => traffic.Completed > before + 20, "traffic through green after blue left", Bound);
            await traffic.StopAsync();
            output.WriteLine(traffic.Summary() + $"; refused connects retried by the balancer: {balancer.RefusedRetries}");
            foreach (var failure in traffic.Failures.Take(20))
            {
                output.WriteLine(failure);
            }
            Assert.Empty(traffic.Failures);
            Assert.All(MixedTraffic.Kinds, kind => Assert.True(traffic.Counts.GetValueOrDefault(kind) > 0, $"no {kind} completed"));
            var sessions = await Task.WhenAll(Enumerable.Range(0, Sessions).Select(i => green[0].GetSessionAsync($"bg-{i}")));
            Assert.All(sessions, s => Assert.NotEmpty(s.Links));
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
            foreach (var node in green.Reverse().Concat(blue.Reverse()))
            {
                await node.DisposeAsync();
            }
        }
    }
}
