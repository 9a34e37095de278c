using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Connect.Client;
using Connect.Proxy;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>Authentication bound to sessions and scopes, tokens kept out of logs, the server's destination policy, and the limits that answer whoever hit them.</summary>
public sealed class HardeningTests(HardeningFixture fixture) : IClassFixture<HardeningFixture>
{
    private TestNode Node => fixture.Node;

    private TestTargets Targets => fixture.Targets;

    private LimitMetrics Limits => Node.Services.GetRequiredService<LimitMetrics>();

    [Fact]
    public async Task A_proxy_token_for_session_A_cannot_use_session_B()
    {
        // Team A's token works for team A's session...
        using (var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("team-a-1", HardeningFixture.TokenA)))
        {
            Assert.Equal(200, tunnel.Status);
        }
        // ...and is refused, with 403 naming the session, for team B's (CONNECT and absolute-form alike).
        using (var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("team-b-1", HardeningFixture.TokenA)))
        {
            Assert.Equal(403, tunnel.Status);
            Assert.Contains("these credentials may not use session 'team-b-1'", tunnel.Body);
        }
        using var client = ProxyClient.Http(Node.ProxyPort, "team-b-1", HardeningFixture.TokenA);
        var response = await client.GetAsync($"http://127.0.0.1:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("may not use session 'team-b-1'", await response.Content.ReadAsStringAsync());
        // Team B's token does not open team A's session either.
        using var other = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("team-a-1", HardeningFixture.TokenB));
        Assert.Equal(403, other.Status);
    }

    [Fact]
    public async Task An_agent_token_for_session_A_cannot_serve_session_B_and_a_proxy_only_token_cannot_serve_at_all()
    {
        await using var crossSession = await TestAgent.StartAsync("team-b-1", [Node.TunnelUri], token: HardeningFixture.TokenA, waitConnected: false);
        var rejected = await Assert.ThrowsAsync<AgentRejectedException>(() => crossSession.Run.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("403", rejected.Message);
        Assert.Contains("may not serve session 'team-b-1'", rejected.Message);

        await using var proxyOnly = await TestAgent.StartAsync("anything-1", [Node.TunnelUri], token: HardeningFixture.ProxyOnlyToken, waitConnected: false);
        rejected = await Assert.ThrowsAsync<AgentRejectedException>(() => proxyOnly.Run.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("403", rejected.Message);

        await using var wrong = await TestAgent.StartAsync("team-a-2", [Node.TunnelUri], token: "wrong-agent-token-0123456789", waitConnected: false);
        rejected = await Assert.ThrowsAsync<AgentRejectedException>(() => wrong.Run.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("401", rejected.Message);
    }

    [Fact]
    public async Task Tokens_never_appear_in_the_logs_even_when_authentication_fails()
    {
        const string wrongProxyToken = "wrong-proxy-token-5f3a9c1e";
        const string wrongAgentToken = "wrong-agent-token-8b2d4e6f";
        using (var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("team-a-1", wrongProxyToken)))
        {
            Assert.Equal(407, tunnel.Status);
        }
        using (var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("team-b-9", HardeningFixture.TokenA)))
        {
            Assert.Equal(403, tunnel.Status);
        }
        // Fields swapped (token where the session goes): refused without echoing the text before the colon.
        using (var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{wrongProxyToken}!:team-a-1"))))
        {
            Assert.Equal(407, tunnel.Status);
        }
        using (var client = ProxyClient.Http(Node.ProxyPort, "team-a-1", wrongProxyToken))
        {
            Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, (await client.GetAsync($"http://127.0.0.1:{Targets.HttpPort}/hello")).StatusCode);
        }
        await using (var agent = await TestAgent.StartAsync("team-a-3", [Node.TunnelUri], token: wrongAgentToken, waitConnected: false))
        {
            await Assert.ThrowsAsync<AgentRejectedException>(() => agent.Run.WaitAsync(TimeSpan.FromSeconds(15)));
        }
        await using (var agent = await TestAgent.StartAsync("team-b-3", [Node.TunnelUri], token: HardeningFixture.TokenA, waitConnected: false))
        {
            await Assert.ThrowsAsync<AgentRejectedException>(() => agent.Run.WaitAsync(TimeSpan.FromSeconds(15)));
        }

        var logs = fixture.Logs.All;
        Assert.Contains("agent rejected with 401", logs); // the failures were logged (at Trace level everything is captured)...
        Assert.Contains("failed with 407", logs);
        foreach (var secret in new[] { wrongProxyToken, wrongAgentToken, HardeningFixture.TokenA, HardeningFixture.TokenB, TestNode.Token })
        {
            Assert.DoesNotContain(secret, logs); // ...and no token, right or wrong, is in any line
            Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes($"team-a-1:{secret}")), logs);
        }
    }

    [Fact]
    public async Task The_server_destination_policy_refuses_a_target_with_403_before_any_stream_is_opened()
    {
        await using var agent = await TestAgent.StartAsync("policed-1", [Node.TunnelUri]);
        var before = Limits.Total(Proxy.Limits.DestinationPolicy);
        using (var allowed = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("policed-1")))
        {
            Assert.Equal(200, allowed.Status);
        }
        using (var refused = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.HttpPort}", ProxyClient.Basic("policed-1")))
        {
            Assert.Equal(403, refused.Status);
            Assert.Contains($"127.0.0.1:{Targets.HttpPort} is not allowed by the server's destination policy", refused.Body);
            Assert.Contains("Connect-Error: DestinationNotAllowed", refused.Head);
        }
        using var client = ProxyClient.Http(Node.ProxyPort, "policed-1");
        var response = await client.GetAsync($"http://127.0.0.1:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("server's destination policy", await response.Content.ReadAsStringAsync());
        // The agent (the customer's allow-list would have let loopback through) never saw the refused targets.
        Assert.Equal(1, agent.Agent.StreamsServed);
        Assert.Equal(0, agent.Agent.StreamsRefused);
        Assert.Equal(before + 2, Limits.Total(Proxy.Limits.DestinationPolicy));
        // Sessions the policy does not name are not restricted by it.
        using var free = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.HttpPort}", ProxyClient.Basic(HardeningFixture.Session));
        Assert.Equal(200, free.Status);
    }

    [Fact]
    public async Task An_agent_link_beyond_the_session_link_limit_gets_429_saying_why()
    {
        await using var agent = await TestAgent.StartAsync("linky", [Node.TunnelUri], links: 2);
        var before = Limits.Total(Proxy.Limits.LinksPerSession);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{Node.TunnelPort}/v1/tunnel?session=linky");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestNode.Token);
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        request.Headers.Add("Sec-WebSocket-Protocol", ProtocolLimits.SubProtocol);
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Contains("session 'linky' already holds 2 links", await response.Content.ReadAsStringAsync());
        Assert.Equal(before + 1, Limits.Total(Proxy.Limits.LinksPerSession));
        Assert.Equal(2, agent.Agent.Links.Count);
        await fixture.AssertHealthyAsync();
    }

    [Fact]
    public async Task A_CONNECT_tunnel_idle_beyond_the_stream_idle_timeout_is_reset_and_counted()
    {
        var before = Limits.Total(Proxy.Limits.StreamIdle);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(HardeningFixture.Session), timeout.Token);
        Assert.Equal(200, tunnel.Status);
        await tunnel.Stream.WriteAsync("ping"u8.ToArray(), timeout.Token);
        var back = new byte[4];
        await tunnel.Stream.ReadExactlyAsync(back, timeout.Token);

        // Now silence: the node ends the tunnel after 1.5 s (bounded wait, not a sleep).
        int read;
        try
        {
            read = await tunnel.Stream.ReadAsync(new byte[16], timeout.Token);
        }
        catch (IOException)
        {
            read = 0;
        }
        Assert.Equal(0, read);
        Assert.False(timeout.IsCancellationRequested);
        await AwaitAsync(() => Limits.Total(Proxy.Limits.StreamIdle) > before, "idle counter");
        await AwaitAsync(() => fixture.Logs.Lines.Any(l => l.Contains("without a byte either way (StreamIdleTimeout)")), "idle log line");
        // The agent got RST(IdleTimeout) and let go of the target connection.
        await AwaitAsync(() => fixture.Agent.Agent.Links.Sum(l => l.Mux.ActiveStreams) == 0, "agent streams released");
    }

    private static Task AwaitAsync(Func<bool> condition, string what) => Eventually.UntilAsync(condition, what, TimeSpan.FromSeconds(10));
}
