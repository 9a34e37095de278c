using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Connect.Testing;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>Nodes leave and crash; sessions keep serving. Each test builds its own cluster because it destroys a node.</summary>
public sealed class MembershipChangeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    /// <summary>Finds a session name whose entity sharding places on <paramref name="wanted"/> (asking creates the entity).</summary>
    /// <summary>Finds a session name whose entity sharding places on one of <paramref name="wanted"/>.</summary>
    private static async Task<Connect.Actors.Protocol.SessionSnapshot> SessionWithEntityOnAsync(TestNode asker, TestNode[] wanted, string prefix)
    {
        // A node that just joined gets shards only once its region has registered with the coordinator: keep asking, bounded.
        var started = Stopwatch.StartNew();
        for (var i = 0; i < 5000 && started.Elapsed < TimeSpan.FromSeconds(30); i++)
        {
            var snapshot = await asker.GetSessionAsync($"{prefix}-{i}");
            if (wanted.Any(w => w.Address == snapshot.EntityNode))
            {
                return snapshot;
            }
        }
        throw new InvalidOperationException($"no session name placed its entity on {string.Join(" or ", wanted.Select(w => w.Address))} within 30 s");
    }

    [Fact]
    public async Task The_node_holding_the_entity_leaves_and_the_session_keeps_serving_with_streams_untouched()
    {
        await using var targets = await TestTargets.StartAsync();
        var nodes = await ThreeNodeCluster.StartAsync(3);
        try
        {
            // The leaving node holds only the entity: the link is on another node, the proxy on the third.
            var placed = await SessionWithEntityOnAsync(nodes[0], nodes, "leave");
            var session = placed.SessionId;
            var leaving = nodes.Single(n => n.Address == placed.EntityNode);
            var proxyNode = nodes.First(n => n != leaving);
            var linkNode = nodes.Single(n => n != leaving && n != proxyNode);
            await using var agent = await TestAgent.StartAsync(session, [linkNode.TunnelUri]);

            using var inFlight = await ProxyClient.ConnectAsync(proxyNode.ProxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic(session));
            Assert.Equal(200, inFlight.Status);
            await EchoAsync(inFlight.Stream, "before the leave");

            await leaving.StopAsync();
            await proxyNode.WaitMembersUpAsync(2, Bound);

            // The stream opened before the leave still carries bytes; new requests through both remaining nodes succeed.
            await EchoAsync(inFlight.Stream, "after the leave");
            foreach (var node in new[] { proxyNode, linkNode })
            {
                using var client = ProxyClient.Http(node.ProxyPort, session);
                Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
            }
            var snapshot = await proxyNode.GetSessionAsync(session);
            Assert.NotEqual(leaving.Address, snapshot.EntityNode);
            Assert.Single(snapshot.Links);
        }
        finally
        {
            foreach (var node in nodes.Reverse())
            {
                await node.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_crashed_node_is_downed_sessions_serve_again_and_a_two_link_session_sees_no_failed_request()
    {
        await using var targets = await TestTargets.StartAsync();
        var nodes = await ThreeNodeCluster.StartAsync(3, TestNode.CrashableSettings(holdTimeout: TimeSpan.FromSeconds(20)));
        try
        {
            // "solo": one link, entity on the victim. "pair": --links 2 over the victim and the other node, entity on the victim too.
            // The victim is whichever node sharding gives solo's entity to.
            var solo = await SessionWithEntityOnAsync(nodes[0], nodes, "solo");
            var victim = nodes.Single(n => n.Address == solo.EntityNode);
            // The proxy traffic goes through a node that survives; the agents' surviving links live on the third.
            var proxyNode = nodes.First(n => n != victim);
            var other = nodes.Single(n => n != victim && n != proxyNode);
            var pair = (await SessionWithEntityOnAsync(proxyNode, [victim], "pair")).SessionId;
            await using var soloAgent = await TestAgent.StartAsync(solo.SessionId, [other.TunnelUri]);
            await using var pairAgent = await TestAgent.StartAsync(pair, [other.TunnelUri, victim.TunnelUri], links: 2);
            Assert.Equal(2, pairAgent.Agent.Links.Select(l => l.Node).Distinct().Count());

            using var pairClient = ProxyClient.Http(proxyNode.ProxyPort, pair);
            var url = $"http://localhost:{targets.HttpPort}/hello";
            Assert.Equal("hello from the private app", await pairClient.GetStringAsync(url));

            // Continuous new requests for "pair" through node 1 across the crash: bounded in count and time.
            using var stopLoop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var failures = new List<string>();
            var served = 0;
            var loop = Task.Run(async () =>
            {
                for (var i = 0; i < 2000 && !stopLoop.IsCancellationRequested; i++)
                {
                    try
                    {
                        using var fresh = ProxyClient.Http(proxyNode.ProxyPort, pair);
                        var response = await fresh.GetAsync(url);
                        if (response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref served);
                        }
                        else
                        {
                            var body = await response.Content.ReadAsStringAsync();
                            lock (failures) { failures.Add($"{(int)response.StatusCode} {body}"); }
                        }
                    }
                    catch (HttpRequestException e)
                    {
                        lock (failures) { failures.Add(e.Message); }
                    }
                }
            });

            var crashedAt = Stopwatch.StartNew();
            await victim.CrashAsync();

            // "solo" lost its entity with the victim: it serves again once the victim is downed and the shard moves.
            using var soloClient = ProxyClient.Http(proxyNode.ProxyPort, solo.SessionId);
            string? soloReply = null;
            while (soloReply is null && crashedAt.Elapsed < Bound)
            {
                var response = await soloClient.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    soloReply = await response.Content.ReadAsStringAsync();
                }
            }
            var recovery = crashedAt.Elapsed;
            output.WriteLine($"session whose entity was on the crashed node served again {recovery.TotalSeconds:0.0} s after the crash");
            Assert.Equal("hello from the private app", soloReply);
            await proxyNode.WaitMembersUpAsync(2, Bound);

            await stopLoop.CancelAsync();
            await loop.WaitAsync(Bound);
            output.WriteLine($"two-link session: {served} requests served during the crash, {failures.Count} failed");
            foreach (var failure in failures)
            {
                output.WriteLine($"  failed: {failure}");
            }
            Assert.True(served > 0);
            Assert.Empty(failures);
        }
        finally
        {
            foreach (var node in nodes.Reverse())
            {
                await node.DisposeAsync();
            }
        }
    }

    private static async Task EchoAsync(NetworkStream stream, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        await stream.WriteAsync(bytes);
        var echoed = new byte[bytes.Length];
        await stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Bound);
        Assert.Equal(text, Encoding.ASCII.GetString(echoed));
    }
}
