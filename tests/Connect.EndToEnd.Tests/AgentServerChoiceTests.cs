using System.Net;
using System.Net.Sockets;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Which servers the agent dials: GOAWAY suggestions only when they keep TLS and name a trusted host, suggested servers
/// kept in the rotation after the configured ones are gone, and one refusing server never taking the agent down.
/// </summary>
public sealed class AgentServerChoiceTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);


    [Fact]
    public async Task A_GOAWAY_suggesting_plain_ws_or_a_foreign_host_is_not_followed_and_the_token_stays_under_TLS()
    {
        using var pki = new TestCertificates();
        var (certificate, key) = pki.ServerPemFiles();
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Certificate:Path"] = certificate,
            ["Connect:Tunnel:Certificate:KeyPath"] = key,
        });
        await using var plain = RecordingListener.Silent();
        var wss = new Uri($"wss://127.0.0.1:{node.TunnelPort}/v1/tunnel");
        await using var agent = await TestAgent.StartAsync("tls-kept", [wss], configure: o => o with { CaFile = pki.RootFile });
        var first = Assert.Single(agent.Agent.Links);

        // What a drain sends when a node advertises a plain URL: the server's side of the link sends GOAWAY whose
        // suggestions are a ws:// URL (a plain listener that records what it gets) and a wss:// URL on a host the
        // agent was never told about.
        var serverLink = Assert.Single(node.Links.All);
        serverLink.Mux.GoAway(GoAwayCode.Draining, "node draining: test", [$"ws://127.0.0.1:{plain.Port}", $"wss://evil.example:{node.TunnelPort}"]);

        // The agent reconnects to its configured (wss) server instead and serves through it.
        await Eventually.UntilAsync(() => agent.Agent.Links.Any(l => l != first && !l.Mux.IsGoingAway), "a new link after GOAWAY", Bound);
        var second = agent.Agent.Links.Single(l => l != first && !l.Mux.IsGoingAway);
        Assert.Equal(wss, second.Server);
        using (var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic("tls-kept")))
        {
            Assert.Equal(200, tunnel.Status);
            await tunnel.Stream.WriteAsync("ping"u8.ToArray());
            var echoed = new byte[4];
            await tunnel.Stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Bound);
            Assert.Equal("ping"u8.ToArray(), echoed);
        }
        Assert.Equal(0, plain.Connections);
        Assert.DoesNotContain("Authorization", plain.Received, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(agent.Log, l => l.Contains($"ws://127.0.0.1:{plain.Port}") && l.Contains("would drop TLS"));
        Assert.Contains(agent.Log, l => l.Contains("evil.example") && l.Contains("not one of the configured servers' hosts"));
    }

    [Fact]
    public async Task One_server_refusing_the_agent_with_401_does_not_stop_it_and_it_serves_through_the_other()
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        // A load balancer or node with a stale token list: answers 401 to the upgrade. It comes first in the list.
        await using var refuser = RecordingListener.Answering(401, "Unauthorized");
        var refuserUri = new Uri($"ws://127.0.0.1:{refuser.Port}/v1/tunnel");
        await using var agent = await TestAgent.StartAsync("one-refuses", [refuserUri, node.TunnelUri], links: 2, waitConnected: false);

        // Both links land on the good node; the refuser keeps being asked now and then (it may be fixed) without the agent stopping.
        await agent.WaitForLinksAsync(2, Bound);
        Assert.All(agent.Agent.Links, l => Assert.Equal(node.TunnelUri, l.Server));
        using (var client = ProxyClient.Http(node.ProxyPort, "one-refuses"))
        {
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
        }
        Assert.True(refuser.Connections >= 1);
        Assert.Contains("Authorization: Bearer", refuser.Received);
        Assert.Contains(agent.Log, l => l.Contains("rejected the agent with 401") && l.Contains("trying the other servers"));
        Assert.False(agent.Run.IsCompleted);
    }

    [Fact]
    public async Task When_every_configured_server_refuses_several_times_the_agent_stops_saying_so()
    {
        await using var node = await TestNode.StartAsync();
        await using var refuser = RecordingListener.Answering(403, "Forbidden");
        var refuserUri = new Uri($"ws://127.0.0.1:{refuser.Port}/v1/tunnel");
        await using var agent = await TestAgent.StartAsync("all-refuse", [refuserUri, node.TunnelUri], token: "not-a-valid-token-0000", waitConnected: false);

        var failure = await Assert.ThrowsAsync<Connect.Client.AgentRejectedException>(() => agent.Run.WaitAsync(Bound));
        Assert.Contains("every configured server refused the agent", failure.Message);
        Assert.Contains($"{refuserUri} rejected the agent with 403", failure.Message);
        Assert.Contains($"{node.TunnelUri} rejected the agent with 401", failure.Message);
        Assert.True(refuser.Connections >= 2, $"the refuser was asked {refuser.Connections} times");
    }

    [Fact]
    public async Task An_agent_started_with_node_A_only_keeps_the_suggested_node_B_in_its_rotation_after_A_is_gone()
    {
        await using var targets = await TestTargets.StartAsync();
        var settings = new Dictionary<string, string?> { ["Connect:Drain:ProxyGrace"] = "00:00:00" };
        var a = await TestNode.StartAsync(settings: settings);
        // B's tunnel port is fixed, so B advertises its URL to the cluster and A's drain suggests it.
        await using var b = await TestNode.StartAsync(seeds: [a.Address], settings: settings, tunnelPort: FreePorts.Next());
        await Task.WhenAll(a.WaitMembersUpAsync(2, Bound), b.WaitMembersUpAsync(2, Bound));
        await using var agent = await TestAgent.StartAsync("green", [a.TunnelUri]);

        // Blue (A) drains: its GOAWAY suggests green (B); the agent moves there. A then goes away for good.
        await a.Services.GetRequiredService<NodeLifecycle>().DrainAsync("blue/green", CancellationToken.None).WaitAsync(Bound);
        await Eventually.UntilAsync(() => agent.Agent.Links.Any(l => l.Server == b.TunnelUri && !l.Mux.IsGoingAway), "a link to B", Bound);
        await a.DisposeAsync();

        // B's link drops (a network blip, a load balancer's idle cut): the agent must come back to B, not only try A.
        var dropped = Assert.Single(b.Links.All);
        dropped.Mux.Abort("test: link dropped");
        await Eventually.UntilAsync(() => b.Links.All.Any(l => l != dropped), "the agent back on B", Bound);
        Assert.Contains(b.TunnelUri, agent.Agent.Servers);
        using var client = ProxyClient.Http(b.ProxyPort, "green");
        Assert.Equal("hello from the private app", await Eventually.AssertAsync(() => client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"), Bound));
    }
}
