using System.Net;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Issue 11, finding 1, end to end: names made to look like allowed addresses, resolved (through the agent's hosts-file
/// hook) to an address the rules do not allow, are refused with 403 through absolute-form and CONNECT, by the real
/// agent process and by the server's destination policy.
/// </summary>
public sealed class LookAlikeDestinationTests(LookAlikeFixture fixture) : IClassFixture<LookAlikeFixture>
{
    private TestNode Node => fixture.Node;

    private TestTargets Targets => fixture.Targets;

    [Fact]
    public async Task A_look_alike_name_resolving_outside_the_agent_allow_list_gets_403_through_absolute_form_and_CONNECT()
    {
        // --allow 10.9.8.*:HttpPort; the name starts with 10.9.8.7 but resolves to 127.0.0.1 (where the app listens).
        using var client = ProxyClient.Http(Node.ProxyPort, LookAlikeFixture.AgentSession);
        var response = await client.GetAsync($"http://10.9.8.7.evil.test:{Targets.HttpPort}/hello");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains($"10.9.8.7.evil.test:{Targets.HttpPort} is not in the agent's allow-list", body);
        Assert.Contains("127.0.0.1 is outside it", body);

        using var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"10.9.8.7.evil.test:{Targets.HttpPort}", ProxyClient.Basic(LookAlikeFixture.AgentSession));
        Assert.Equal(403, tunnel.Status);
        Assert.Contains("127.0.0.1 is outside it", tunnel.Body);
    }

    [Fact]
    public async Task A_name_with_one_address_outside_the_agent_allow_list_gets_403_and_one_inside_is_served()
    {
        // --allow 127.0.0.0/8:EchoPort; mixed.test resolves to 127.0.0.1 and 10.9.8.7.
        using (var mixed = await ProxyClient.ConnectAsync(Node.ProxyPort, $"mixed.test:{Targets.EchoPort}", ProxyClient.Basic(LookAlikeFixture.AgentSession)))
        {
            Assert.Equal(403, mixed.Status);
            Assert.Contains("10.9.8.7 is outside it", mixed.Body);
        }

        // echo.test resolves (through the hook) only to 127.0.0.1: inside the block, served.
        using var echo = await ProxyClient.ConnectAsync(Node.ProxyPort, $"echo.test:{Targets.EchoPort}", ProxyClient.Basic(LookAlikeFixture.AgentSession));
        Assert.Equal(200, echo.Status);
        var ping = "through-the-hook"u8.ToArray();
        await echo.Stream.WriteAsync(ping);
        var back = new byte[ping.Length];
        await echo.Stream.ReadExactlyAsync(back).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(ping, back);
        Assert.Contains(fixture.AgentProcess.Output, l => l.Contains("names resolve through") && l.Contains("CONNECT_CLIENT_HOSTS_FILE"));
    }

    [Fact]
    public async Task The_server_destination_policy_refuses_a_look_alike_name_and_canonicalises_numeric_addresses()
    {
        // Policy for lookalike-*: 127.0.0.*:EchoPort. The node does not resolve: a name never passes an address rule,
        // however it resolves at the agent (this one resolves to 127.0.0.1 there, and that agent allows everything).
        var served = fixture.PolicedAgent.Agent.StreamsServed;
        using (var refused = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1.evil.test:{Targets.EchoPort}", ProxyClient.Basic(LookAlikeFixture.PolicedSession)))
        {
            Assert.Equal(403, refused.Status);
            Assert.Contains("Connect-Error: DestinationNotAllowed", refused.Head);
            Assert.Contains($"127.0.0.1.evil.test:{Targets.EchoPort} is not allowed by the server's destination policy", refused.Body);
        }
        using var client = ProxyClient.Http(Node.ProxyPort, LookAlikeFixture.PolicedSession);
        var response = await client.GetAsync($"http://127.0.0.1.evil.test:{Targets.EchoPort}/");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("server's destination policy", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, fixture.PolicedAgent.Agent.StreamsRefused);
        Assert.Equal(served, fixture.PolicedAgent.Agent.StreamsServed);

        // A legacy numeric spelling of an allowed address is the address: allowed, and the agent dials 127.0.0.1.
        using var numeric = await ProxyClient.ConnectAsync(Node.ProxyPort, $"0x7f.1:{Targets.EchoPort}", ProxyClient.Basic(LookAlikeFixture.PolicedSession));
        Assert.Equal(200, numeric.Status);
        var ping = "numeric"u8.ToArray();
        await numeric.Stream.WriteAsync(ping);
        var back = new byte[ping.Length];
        await numeric.Stream.ReadExactlyAsync(back).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(ping, back);
    }
}
