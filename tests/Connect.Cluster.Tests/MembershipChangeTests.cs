using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Connect.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>Nodes leave and crash; sessions keep serving. Each test builds its own cluster because it destroys a node.</summary>
public sealed class MembershipChangeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    /// <summary>Finds a session name whose entity sharding places on <paramref name="wanted"/> (asking creates the entity).</summary>
    private static async Task<string> SessionWithEntityOnAsync(TestNode asker, TestNode wanted, string prefix) =>
        (await SessionWithEntityOnAsync(asker, [wanted], prefix)).SessionId;

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
            // Entity on node 2, link on node 3, proxy on node 1: the leaving node holds only the entity.
            var session = await SessionWithEntityOnAsync(nodes[0], nodes[1], "leave");
            await using var agent = await TestAgent.StartAsync(session, [nodes[2].TunnelUri]);

            using var inFlight = await ProxyClient.ConnectAsync(nodes[0].ProxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic(session));
            Assert.Equal(200, inFlight.Status);
            await EchoAsync(inFlight.Stream, "before the leave");

            await nodes[1].StopAsync();
            await nodes[0].WaitMembersUpAsync(2, Bound);

            // The stream opened before the leave still carries bytes; new requests through both remaining nodes succeed.
            await EchoAsync(inFlight.Stream, "after the leave");
            foreach (var node in new[] { nodes[0], nodes[2] })
            {
                using var client = ProxyClient.Http(node.ProxyPort, session);
                Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
            }
            var snapshot = await nodes[0].GetSessionAsync(session);
            Assert.NotEqual(nodes[1].Address, snapshot.EntityNode);
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
            // The victim is whichever of nodes 2 and 3 sharding gives solo's entity to (node 1 carries the proxy traffic).
            var solo = await SessionWithEntityOnAsync(nodes[0], [nodes[1], nodes[2]], "solo");
            var victim = nodes.Single(n => n.Address == solo.EntityNode);
            var other = nodes[1] == victim ? nodes[2] : nodes[1];
            var pair = (await SessionWithEntityOnAsync(nodes[0], [victim], "pair")).SessionId;
            await using var soloAgent = await TestAgent.StartAsync(solo.SessionId, [other.TunnelUri]);
            await using var pairAgent = await TestAgent.StartAsync(pair, [other.TunnelUri, victim.TunnelUri], links: 2);
            Assert.Equal(2, pairAgent.Agent.Links.Select(l => l.Node).Distinct().Count());

            using var pairClient = ProxyClient.Http(nodes[0].ProxyPort, pair);
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
                        using var fresh = ProxyClient.Http(nodes[0].ProxyPort, pair);
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
            using var soloClient = ProxyClient.Http(nodes[0].ProxyPort, solo.SessionId);
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
            await nodes[0].WaitMembersUpAsync(2, Bound);

            await stopLoop.CancelAsync();
            await loop.WaitAsync(Bound);
            output.WriteLine($"two-link session: {served} requests served during the crash, {failures.Count} failed");
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
