using System.Diagnostics;
using Connect.Bench.Sim;
using Connect.Testing;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Issue 16's reconnect storm at CI scale: 100 simulated sessions with two links each (real connect.v1 WebSockets
/// from one process) over three nodes, proxy traffic through the two survivors at a fixed rate, and one node
/// crashed. Every session must be linked twice again, and no request of these two-link sessions that starts after
/// the crash may fail.
/// </summary>
public sealed class SimulatorStormTests(ITestOutputHelper output)
{
    private const int Sessions = 100;
    private const int LinksPerSession = 2;
    private const string Prefix = "storm";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_node_crash_under_proxy_load_relinks_every_two_link_session_and_fails_no_request_started_after_it()
    {
        var nodes = await ThreeNodeCluster.StartAsync(3, TestNode.CrashableSettings(holdTimeout: TimeSpan.FromSeconds(20)));
        try
        {
            await using var simulator = new AgentSimulator(new SimulatorOptions
            {
                Servers = nodes.Select(n => n.TunnelUri).ToList(),
                Token = TestNode.Token,
                Sessions = Sessions,
                LinksPerSession = LinksPerSession,
                SessionPrefix = Prefix,
                DialJitter = TimeSpan.FromMilliseconds(500),
            });
            simulator.Start();
            await simulator.WaitConnectedAsync(Bound);
            await Eventually.UntilAsync(() => nodes.Sum(n => n.Links.Count) == Sessions * LinksPerSession, "every link registered on its node", Bound);
            // Link k of session s starts on node (s + k) mod 3: each session's two links are on two different nodes.
            var victim = nodes[2];
            var survivors = nodes[..2];
            var held = victim.Links.Count;
            Assert.InRange(held, Sessions / 2, Sessions);

            var names = Enumerable.Range(0, Sessions).Select(i => AgentSimulator.SessionName(Prefix, i)).ToList();
            var load = new ProxyLoad(new ProxyLoadOptions
            {
                Proxies = survivors.Select(n => $"127.0.0.1:{n.ProxyPort}").ToList(),
                Sessions = names,
                Token = TestNode.Token,
                Rate = 40,
                Duration = TimeSpan.FromSeconds(25),
                Mode = "both",
                RequestTimeout = TimeSpan.FromSeconds(30),
            });
            var traffic = load.RunAsync(CancellationToken.None);
            // The load is running and answered before the crash: the crash then happens under it.
            await Eventually.UntilAsync(() => load.Ok >= 40, "40 requests served before the crash", Bound);

            var crashed = Stopwatch.StartNew();
            var crashedAt = DateTimeOffset.UtcNow;
            var inFlightAtCrash = load.InFlight;
            await victim.CrashAsync();
            await survivors[0].WaitMembersUpAsync(2, Bound);
            output.WriteLine($"crashed node ({held} links) removed after {crashed.Elapsed.TotalSeconds:0.0} s");

            // Every session is linked twice again, only on the survivors, and the simulator sees every link open.
            await Eventually.UntilAsync(
                () => survivors.Sum(n => n.Links.Count) == Sessions * LinksPerSession && simulator.Connected == Sessions * LinksPerSession,
                "every session re-linked twice on the survivors", Bound);
            output.WriteLine($"every session re-linked after {crashed.Elapsed.TotalSeconds:0.0} s ({simulator.Reconnects} reconnects)");
            var perSession = survivors.SelectMany(n => n.Links.All).GroupBy(l => l.SessionId).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(names, perSession.Keys.Order(StringComparer.Ordinal));
            Assert.All(perSession.Values, count => Assert.Equal(LinksPerSession, count));

            await traffic.WaitAsync(Bound);
            output.WriteLine($"proxy load through the survivors: {load.Summary()}; {inFlightAtCrash} in flight at the crash");
            foreach (var failure in load.FailedRequests)
            {
                output.WriteLine($"  failed ({(failure.Started < crashedAt ? "started before" : "started after")} the crash): {(failure.Connect ? "CONNECT" : "GET")}: {failure.Reason}");
            }
            // The load ran through the whole crash: well over the requests sent before it.
            Assert.True(load.Ok >= 400, $"only {load.Ok} requests served");
            Assert.Equal(0, load.Skipped);
            // No request that started after the crash may fail: the survivor link serves it, whether the session's
            // entity moved or not. A request already in flight whose stream ran on the crashed node's link can be cut
            // with it (a CONNECT tunnel cannot be replayed), so those are bounded by what was in flight, not zero.
            Assert.DoesNotContain(load.FailedRequests, f => f.Started >= crashedAt);
            Assert.True(load.Failed <= inFlightAtCrash, $"{load.Failed} failed requests, only {inFlightAtCrash} were in flight at the crash");
        }
        finally
        {
            foreach (var node in nodes.Reverse())
            {
                await node.DisposeAsync();
            }
        }
    }
}
