using Akka.Actor;
using Akka.Cluster;
using Connect.Admin.Tests.Support;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using ExitCodes = Connect.Ctl.ExitCodes;

namespace Connect.Admin.Tests;

/// <summary>
/// `cluster leave` of another node makes that node run its own graceful shutdown: it drains while still Up (its
/// region can still hand off and register; the coordinator does not move mid-drain), and only then leaves.
/// </summary>
public sealed class LeaveTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static MemberStatus? StatusOf(TestNode observer, TestNode member)
    {
        var cluster = Akka.Cluster.Cluster.Get(observer.Services.GetRequiredService<ActorSystem>());
        return cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == member.Address)?.Status;
    }

    [Fact]
    public async Task Leave_of_a_remote_node_drains_it_while_it_is_still_Up_then_it_leaves()
    {
        await using var targets = await TestTargets.StartAsync();
        // A long drain deadline: the drain lasts as long as the test holds a stream open on the leaving node.
        var settings = new Dictionary<string, string?>(AdminApi.Settings) { ["Connect:Drain:Deadline"] = "00:01:00" };
        var a = await TestNode.StartAsync(settings: settings);
        var b = await TestNode.StartAsync(seeds: [a.Address], settings: settings);
        var c = await TestNode.StartAsync(seeds: [a.Address], settings: settings);
        var nodes = new[] { a, b, c };
        try
        {
            await a.WaitMembersUpAsync(3, Bound);
            await using var agent = await TestAgent.StartAsync("leaver", [b.TunnelUri, c.TunnelUri]);
            await Eventually.UntilAsync(() => b.Links.Count == 1, "the agent's link on node B");
            // A busy stream through node A over B's link keeps B's drain going until the test ends it.
            using var busy = await ProxyClient.ConnectAsync(a.ProxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic("leaver"));
            Assert.Equal(200, busy.Status);
            var lifecycle = b.Services.GetRequiredService<NodeLifecycle>();

            var leave = await AdminApi.CtlAsync(a, "cluster", "leave", "-a", b.Address);
            Assert.Equal(ExitCodes.Ok, leave.ExitCode);
            Assert.Contains("drains while Up", leave.Output);

            // B drains: its link got GOAWAY (the agent opens its new link on another node)...
            await Eventually.UntilAsync(() => lifecycle.IsDraining && b.Links.All.All(l => l.Mux.IsGoingAway), "node B draining with its link going away", Bound);
            await Eventually.UntilAsync(() => a.Links.Count + c.Links.Count == 1, "the agent's new link on another node", Bound);
            // ...while every member still sees it Up, B included.
            foreach (var observer in nodes)
            {
                Assert.Equal(MemberStatus.Up, StatusOf(observer, b));
            }
            Assert.False(lifecycle.Drained.IsCompleted);

            // The busy stream still carries bytes; when it ends the drain finishes and only then does B leave.
            await busy.Stream.WriteAsync("still here"u8.ToArray());
            var echo = new byte[10];
            await busy.Stream.ReadExactlyAsync(echo).AsTask().WaitAsync(Bound);
            Assert.Equal("still here"u8.ToArray(), echo);
            busy.Dispose();
            await lifecycle.Drained.WaitAsync(Bound);
            await Eventually.UntilAsync(() => StatusOf(a, b) is null, "node B removed from the cluster", Bound);
            Assert.Equal(0, lifecycle.StreamsResetAtDeadline);

            // The session keeps serving through the remaining nodes.
            using var client = ProxyClient.Http(a.ProxyPort, "leaver");
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
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
