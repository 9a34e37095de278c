using System.Net;
using System.Net.Sockets;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>The agent's side of a link's life: reconnecting after the node restarts, and refusing to run with a bad token.</summary>
public sealed class AgentLifecycleTests
{

    [Fact]
    public async Task The_agent_reconnects_after_the_node_restarts_and_traffic_flows_again()
    {
        await using var targets = await TestTargets.StartAsync();
        var tunnelPort = FreePorts.Next();
        var proxyPort = FreePorts.Next();
        var node = await TestNode.StartAsync(tunnelPort: tunnelPort, proxyPort: proxyPort);
        await using var agent = await TestAgent.StartAsync("restart", [node.TunnelUri]);
        using (var client = ProxyClient.Http(proxyPort, "restart"))
        {
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
        }
        var firstLink = Assert.Single(agent.Agent.Links);

        await node.DisposeAsync();
        await using var restarted = await TestNode.StartAsync(tunnelPort: tunnelPort, proxyPort: proxyPort);
        await agent.WaitForLinksAsync(1, TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(firstLink, agent.Agent.Links);

        using (var client = ProxyClient.Http(proxyPort, "restart"))
        {
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello"));
        }
    }

    [Fact]
    public async Task An_agent_with_a_wrong_token_stops_with_a_clear_error()
    {
        await using var node = await TestNode.StartAsync();
        await using var agent = await TestAgent.StartAsync("bad-token", [node.TunnelUri], token: "wrong-token-wrong-token", waitConnected: false);
        var failure = await Assert.ThrowsAsync<Connect.Client.AgentRejectedException>(() => agent.Run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("401", failure.Message);
    }

    [Fact]
    public async Task Stopping_the_agent_lets_an_open_stream_finish_first()
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        var agent = await TestAgent.StartAsync("graceful", [node.TunnelUri]);
        using var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{targets.ReplyAfterFinPort}", ProxyClient.Basic("graceful"));
        Assert.Equal(200, tunnel.Status);
        await tunnel.Stream.WriteAsync("request body"u8.ToArray());

        var stopping = agent.StopAsync();
        // The open stream still completes: FIN goes through, the reply comes back.
        tunnel.Socket.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(tunnel.Stream);
        var reply = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("12:", reply);
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(agent.Agent.Links);
        await agent.DisposeAsync();
    }
}
