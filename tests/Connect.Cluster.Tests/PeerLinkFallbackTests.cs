using System.Diagnostics;
using Akka.Actor;
using Connect.Actors.Sessions;
using Connect.Routing.Streams;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Issue 13 finding 1 and issue 16's storm goal: a session with a healthy link sees no failed request when the node
/// holding its entity crashes. Until production downing removes the node (15 s stable-after, ~20-30 s in all), the
/// entity cannot answer; an entry node with no cached grant and no local link of the session must then learn the
/// session's live link from the other nodes' registries instead of waiting for the entity and failing with 504.
/// </summary>
public sealed class PeerLinkFallbackTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private TestTargets _targets = null!;

    public async Task InitializeAsync() => _targets = await TestTargets.StartAsync();

    public async Task DisposeAsync() => await _targets.DisposeAsync();

    [Fact]
    public async Task A_request_through_a_node_that_never_served_the_session_uses_its_live_link_on_a_survivor_while_the_entity_node_is_crashed_and_not_yet_downed()
    {
        // Production downing and failure detection: only the coordinated shutdown on terminate is off, so that the
        // crash does not leave the cluster gracefully.
        var settings = new Dictionary<string, string?>
        {
            ["Connect:Cluster:Hocon"] = "akka.coordinated-shutdown.run-by-actor-system-terminate = off",
        };
        var nodes = await ThreeNodeCluster.StartAsync(3, settings);
        var (entry, victim, survivor) = (nodes[0], nodes[1], nodes[2]);
        try
        {
            var session = await entry.SessionWithEntityOnAsync(victim, "fallback", Bound);
            await using var agent = await TestAgent.StartAsync(session, [victim.TunnelUri, survivor.TunnelUri], links: 2);
            await Eventually.UntilAsync(
                () => victim.Links.All.Count(l => l.SessionId == session) == 1 && survivor.Links.All.Count(l => l.SessionId == session) == 1,
                "one link on the entity's node and one on the survivor",
                Bound);
            var cache = entry.Services.GetRequiredService<GrantCache>();
            Assert.Equal(0, cache.Count);
            Assert.Empty(entry.Links.All);

            await victim.CrashAsync();

            using var client = ProxyClient.Http(entry.ProxyPort, session);
            client.Timeout = Bound;
            var clock = Stopwatch.StartNew();
            using var response = await client.GetAsync($"http://localhost:{_targets.HttpPort}/hello");
            var body = await response.Content.ReadAsStringAsync();
            output.WriteLine($"{(int)response.StatusCode} after {clock.Elapsed.TotalSeconds:0.0} s with the entity's node crashed: {body.Trim()}");

            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal("hello from the private app", body);
            // Answered while the crashed node was still a member: the link was found without the entity, not after downing moved it.
            var members = Akka.Cluster.Cluster.Get(entry.Services.GetRequiredService<ActorSystem>()).State.Members;
            Assert.Contains(members, m => m.Address.ToString() == victim.Address && m.Status == Akka.Cluster.MemberStatus.Up);
            // The link found is remembered, so the next requests go straight there.
            Assert.Contains(cache.Healthy(session, []), g => g.LinkNode == survivor.Address);
            Assert.Equal(1, entry.Services.GetRequiredService<StreamBroker>().PeerFallbacks);
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
