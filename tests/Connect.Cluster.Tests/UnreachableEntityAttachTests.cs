using System.Diagnostics;
using Akka.Actor;
using Connect.Actors.Sessions;
using Microsoft.Extensions.DependencyInjection;
using System.Net.WebSockets;
using Connect.Cluster.Tests.Support;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Issue 16: the tunnel endpoint counts the session's links before the upgrade by asking the session entity. When the
/// entity's node is unreachable (crashed or frozen, not downed yet: a reconnect storm) that ask cannot be answered, and
/// it must not hold the agent's handshake for long; the link limit is then enforced by the entity when the link attaches.
/// </summary>
public sealed class UnreachableEntityAttachTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>A handshake bound well under the old 5 s count timeout and well over the new 1 s one (a loaded CI machine).</summary>
    private static readonly TimeSpan PromptUpgrade = TimeSpan.FromSeconds(4);

    [Fact]
    public async Task An_agent_attaching_while_its_entity_home_is_unreachable_is_upgraded_promptly_and_the_link_limit_still_holds()
    {
        var settings = NetworkPartition.Settings(new Dictionary<string, string?>
        {
            ["Connect:Sessions:MaxLinksPerSession"] = "1",
            // No downing inside the test: the entity's home stays unreachable, not removed.
            ["Connect:Cluster:DowningStableAfter"] = "00:02:00",
        });
        var a = await TestNode.StartAsync(settings: settings, configure: NetworkPartition.Configure);
        var b = await TestNode.StartAsync(seeds: [a.Address], settings: settings, configure: NetworkPartition.Configure);
        var nodes = new[] { a, b };
        try
        {
            await Task.WhenAll(nodes.Select(n => n.WaitMembersUpAsync(2, Bound)));
            var session = await a.SessionWithEntityOnAsync(b, "storm", Bound);
            await using var agent = await TestAgent.StartAsync(session, [b.TunnelUri]);
            await Eventually.UntilAsync(() => b.GetSessionAsync(session).Result.Links.Count == 1, "the agent's link attached", Bound);

            await NetworkPartition.CutAsync([a], [b]);

            // A second agent reaches node A: its link count cannot be had from the entity on B, yet it is upgraded at once.
            using var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
            socket.Options.SetRequestHeader("Authorization", "Bearer " + TestNode.Token);
            var clock = Stopwatch.StartNew();
            using (var handshake = new CancellationTokenSource(PromptUpgrade))
            {
                await socket.ConnectAsync(new Uri($"{a.TunnelUri}?session={session}"), handshake.Token);
            }
            output.WriteLine($"upgraded {clock.Elapsed.TotalSeconds:0.00} s after the request with the entity's node unreachable");

            // Once the entity is reachable the link attaches, and the entity refuses it: the session already holds its one link.
            await NetworkPartition.HealAsync([a], [b]);
            var buffer = new byte[64 * 1024];
            using var closed = new CancellationTokenSource(Bound);
            WebSocketReceiveResult received;
            do
            {
                received = await socket.ReceiveAsync(buffer, closed.Token);
            }
            while (received.MessageType != WebSocketMessageType.Close);
            output.WriteLine($"closed {clock.Elapsed.TotalSeconds:0.0} s after the request: {(int?)socket.CloseStatus} {socket.CloseStatusDescription}");
            Assert.Equal(CloseCodes.TooManyLinks, (int?)socket.CloseStatus);
            Assert.Contains("limit", socket.CloseStatusDescription);
            var snapshot = await a.GetSessionAsync(session);
            Assert.Equal(b.Address, snapshot.Links.Single().Node);
        }
        finally
        {
            await NetworkPartition.HealAsync([a], [b]);
            foreach (var node in nodes.Reverse())
            {
                await node.DisposeAsync();
            }
        }
    }
}
