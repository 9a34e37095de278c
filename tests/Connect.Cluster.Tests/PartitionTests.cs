using System.Diagnostics;
using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Connect.Cluster.Tests.Support;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Network partitions between nodes while agents and proxy clients still reach every node (issue 13): Akka.Remote and
/// the node data channel are cut (<see cref="NetworkPartition"/>). The keep-majority resolver must down the minority,
/// the minority must know it is not ready before that, agents must move to the majority, and a session must never have
/// two live entities (the minority's entity must be gone before the majority creates its own).
/// </summary>
public sealed class PartitionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    /// <summary>Quick failure detection so a test needs seconds, not the production 15 s stable-after.</summary>
    private const string QuickFailureDetector =
        "akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s\nakka.cluster.failure-detector.heartbeat-interval = 500ms";

    private static Akka.Cluster.Cluster ClusterOf(TestNode node) => Akka.Cluster.Cluster.Get(node.Services.GetRequiredService<ActorSystem>());

    private static async Task<HttpStatusCode> ReadyzAsync(HttpClient http, TestNode node)
    {
        try
        {
            return (await http.GetAsync($"http://127.0.0.1:{node.AdminPort}/readyz")).StatusCode;
        }
        catch (HttpRequestException)
        {
            return HttpStatusCode.ServiceUnavailable;
        }
    }

    [Fact]
    public async Task An_isolated_node_turns_not_ready_while_cut_off_and_ready_again_when_the_partition_heals()
    {
        var settings = NetworkPartition.Settings(new Dictionary<string, string?>
        {
            ["Connect:Cluster:Hocon"] = QuickFailureDetector,
            // Long enough that nobody is downed: this test is about what readiness says while the partition lasts.
            ["Connect:Cluster:DowningStableAfter"] = "00:03:00",
        });
        var nodes = await StartAsync(settings);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            Assert.All(await Task.WhenAll(nodes.Select(n => ReadyzAsync(http, n))), s => Assert.Equal(HttpStatusCode.OK, s));
            var isolated = nodes[2];
            var majority = new[] { nodes[0], nodes[1] };

            var clock = Stopwatch.StartNew();
            await NetworkPartition.CutAsync([isolated], majority);

            // The process is alive and its member status is still Up as it sees it, but it sees a majority unreachable.
            await Eventually.UntilAsync(() => ReadyzAsync(http, isolated).Result == HttpStatusCode.ServiceUnavailable, "the isolated node's /readyz turned 503", Bound);
            output.WriteLine($"isolated node not ready {clock.Elapsed.TotalSeconds:0.0} s after the cut: {await (await http.GetAsync($"http://127.0.0.1:{isolated.AdminPort}/readyz")).Content.ReadAsStringAsync()}");
            Assert.Equal(MemberStatus.Up, ClusterOf(isolated).SelfMember.Status);
            // The majority sees one member unreachable and stays ready: a crash or isolation of one node takes only it out.
            await Eventually.UntilAsync(() => ClusterOf(majority[0]).State.Unreachable.Count == 1, "the majority sees the isolated node unreachable", Bound);
            Assert.All(await Task.WhenAll(majority.Select(n => ReadyzAsync(http, n))), s => Assert.Equal(HttpStatusCode.OK, s));

            clock.Restart();
            await NetworkPartition.HealAsync([isolated], majority);
            await Eventually.UntilAsync(() => ReadyzAsync(http, isolated).Result == HttpStatusCode.OK, "the isolated node's /readyz back to 200 after the heal", Bound);
            output.WriteLine($"ready again {clock.Elapsed.TotalSeconds:0.0} s after the heal");
        }
        finally
        {
            await NetworkPartition.HealAsync([nodes[2]], [nodes[0], nodes[1]]);
            await DisposeAsync(nodes);
        }
    }

    [Fact]
    public async Task A_minority_node_downs_itself_its_agents_move_to_the_majority_and_no_session_ever_has_two_live_entities()
    {
        await using var targets = await TestTargets.StartAsync();
        var entityLog = new LogCapture();
        var settings = NetworkPartition.Settings(new Dictionary<string, string?>
        {
            ["Connect:Cluster:Hocon"] = QuickFailureDetector,
            ["Connect:Cluster:DowningStableAfter"] = "00:00:03",
            ["Connect:Sessions:HoldTimeout"] = "00:00:20",
            ["Logging:LogLevel:Connect.Actors.Sessions.SessionActor"] = "Debug",
        });
        var nodes = await StartAsync(settings, entityLog);
        var minority = nodes[2];
        var majority = new[] { nodes[0], nodes[1] };
        var minoritySystem = minority.Services.GetRequiredService<ActorSystem>();
        var agents = new List<TestAgent>();
        try
        {
            // Six sessions whose agents all hold their link on the minority node (their other servers come next);
            // entities spread over the three nodes, so some live on the minority too.
            var sessions = Enumerable.Range(0, 6).Select(i => $"part-{i}").ToArray();
            foreach (var session in sessions)
            {
                agents.Add(await TestAgent.StartAsync(session, [minority.TunnelUri, nodes[0].TunnelUri, nodes[1].TunnelUri]));
            }
            var url = $"http://localhost:{targets.HttpPort}/hello";
            foreach (var session in sessions)
            {
                using var client = ProxyClient.Http(nodes[0].ProxyPort, session);
                Assert.Equal("hello from the private app", await client.GetStringAsync(url));
            }
            var entitiesOnMinority = 0;
            foreach (var session in sessions)
            {
                entitiesOnMinority += (await nodes[0].GetSessionAsync(session)).EntityNode == minority.Address ? 1 : 0;
            }
            output.WriteLine($"{entitiesOnMinority} of {sessions.Length} entities on the minority node before the cut");

            var clock = Stopwatch.StartNew();
            await NetworkPartition.CutAsync([minority], majority);

            // The minority downs itself (keep-majority: 1 of 3) and its actor system stops; the majority downs and
            // removes it and stays Up.
            await minoritySystem.WhenTerminated.WaitAsync(Bound);
            var minorityGone = clock.Elapsed;
            await Eventually.UntilAsync(
                () => majority.All(n => ClusterOf(n).State.Members.Count == 2 && ClusterOf(n).State.Unreachable.Count == 0),
                "the majority downed and removed the minority node",
                Bound);
            var majorityClean = clock.Elapsed;
            Assert.All(majority, n => Assert.Equal(MemberStatus.Up, ClusterOf(n).SelfMember.Status));

            // Every session serves again through the majority, its agent having moved there.
            foreach (var session in sessions)
            {
                using var client = ProxyClient.Http(nodes[0].ProxyPort, session);
                await Eventually.AssertAsync(async () =>
                {
                    Assert.Equal("hello from the private app", await client.GetStringAsync(url));
                    return true;
                }, Bound);
            }
            var serving = clock.Elapsed;
            Assert.All(agents, a => Assert.All(a.Agent.Links, l => Assert.NotEqual(minority.Address, l.Node)));
            output.WriteLine($"minority node stopped itself {minorityGone.TotalSeconds:0.0} s after the cut; majority removed it at {majorityClean.TotalSeconds:0.0} s; every session served through the majority at {serving.TotalSeconds:0.0} s");

            AssertNeverTwoLiveEntities(entityLog, sessions);
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
            await NetworkPartition.HealAsync([minority], majority);
            await DisposeAsync(nodes);
        }
    }

    /// <summary>
    /// Replays the entities' start and stop lines of all nodes in the order they were logged (one shared capture, so one
    /// order): at no point may a session have two entities alive.
    /// </summary>
    private void AssertNeverTwoLiveEntities(LogCapture log, IReadOnlyCollection<string> sessions)
    {
        var live = sessions.ToDictionary(s => s, _ => new List<string>());
        var starts = sessions.ToDictionary(s => s, _ => 0);
        foreach (var line in log.Lines)
        {
            foreach (var session in sessions)
            {
                var started = $"session {session}: entity started on ";
                var stopped = $"session {session}: entity stopped on ";
                var at = line.IndexOf(started, StringComparison.Ordinal);
                if (at >= 0)
                {
                    var node = line[(at + started.Length)..].Split(' ')[0];
                    live[session].Add(node);
                    starts[session]++;
                    Assert.True(live[session].Count == 1, $"session {session} has entities alive on {string.Join(" and ", live[session])} at once");
                }
                at = line.IndexOf(stopped, StringComparison.Ordinal);
                if (at >= 0)
                {
                    live[session].Remove(line[(at + stopped.Length)..].Split(' ')[0]);
                }
            }
        }
        output.WriteLine("entity starts per session: " + string.Join(", ", starts.Select(p => $"{p.Key}={p.Value}")));
        Assert.All(sessions, s => Assert.True(starts[s] >= 1, $"no entity start of {s} was logged"));
    }

    private static async Task<TestNode[]> StartAsync(Dictionary<string, string?> settings, LogCapture? logs = null)
    {
        var first = await TestNode.StartAsync(settings: settings, configure: NetworkPartition.Configure, logs: logs);
        var rest = new List<TestNode>();
        for (var i = 0; i < 2; i++)
        {
            rest.Add(await TestNode.StartAsync(seeds: [first.Address], settings: settings, configure: NetworkPartition.Configure, logs: logs));
        }
        var nodes = new[] { first }.Concat(rest).ToArray();
        await Task.WhenAll(nodes.Select(n => n.WaitMembersUpAsync(3, Bound)));
        return nodes;
    }

    private static async Task DisposeAsync(IEnumerable<TestNode> nodes)
    {
        foreach (var node in nodes.Reverse())
        {
            await node.DisposeAsync();
        }
    }
}
