using System.Net;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>Every failure a proxy client can meet gets a status that says what went wrong and for which session.</summary>
public sealed class ProxyErrorTests(SingleNodeFixture fixture) : IClassFixture<SingleNodeFixture>
{
    private int ProxyPort => fixture.Node.ProxyPort;

    private TestTargets Targets => fixture.Targets;

    private static HttpClient Unauthenticated(int proxyPort) => new(new SocketsHttpHandler
    {
        Proxy = new WebProxy($"http://127.0.0.1:{proxyPort}"),
        UseProxy = true,
    });

    [Fact]
    public async Task Missing_credentials_get_407_with_the_Basic_challenge()
    {
        using var client = Unauthenticated(ProxyPort);
        var response = await client.GetAsync($"http://localhost:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, response.StatusCode);
        Assert.Contains(response.Headers.ProxyAuthenticate, h => h.Scheme == "Basic" && h.Parameter!.Contains("realm=\"connect\""));
    }

    [Fact]
    public async Task CONNECT_without_credentials_gets_407_closing_the_connection_and_a_new_one_with_them_succeeds()
    {
        using (var first = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", authorization: null))
        {
            Assert.Equal(407, first.Status);
            Assert.Contains("Proxy-Authenticate: Basic realm=\"connect\"", first.Head);
            Assert.Contains("Connection: close", first.Head);
            // The refused CONNECT's connection ends: nothing the client sends next can be read as a request.
            Assert.Equal(0, await first.Stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // A new connection, now with credentials (as a browser does after the challenge).
        using var retry = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(200, retry.Status);
    }

    [Fact]
    public async Task A_wrong_token_gets_407()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session, token: "not-the-right-token");
        var response = await client.GetAsync($"http://localhost:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, response.StatusCode);

        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(SingleNodeFixture.Session, "not-the-right-token"));
        Assert.Equal(407, tunnel.Status);
        Assert.Contains("invalid token", tunnel.Body);
        Assert.DoesNotContain($"'{SingleNodeFixture.Session}'", tunnel.Body);
    }

    [Fact]
    public async Task A_session_without_an_agent_gets_502_naming_the_session()
    {
        using var client = ProxyClient.Http(ProxyPort, "nobody-home");
        var response = await client.GetAsync($"http://localhost:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("session 'nobody-home' has no connected agent", await response.Content.ReadAsStringAsync());

        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic("nobody-home"));
        Assert.Equal(502, tunnel.Status);
        Assert.Contains("session 'nobody-home' has no connected agent", tunnel.Body);
    }

    [Fact]
    public async Task A_destination_outside_the_agent_allow_list_gets_403_saying_why()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        var response = await client.GetAsync("http://intranet.example:8080/");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("intranet.example:8080 is not in the agent's allow-list", await response.Content.ReadAsStringAsync());

        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, "intranet.example:443", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(403, tunnel.Status);
        Assert.Contains("not in the agent's allow-list", tunnel.Body);
    }

    [Fact]
    public async Task A_target_that_refuses_the_connection_gets_502_saying_so()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        var response = await client.GetAsync($"http://127.0.0.1:{Targets.ClosedPort}/");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("connection refused by the target", await response.Content.ReadAsStringAsync());

        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.ClosedPort}", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(502, tunnel.Status);
        Assert.Contains("connection refused by the target", tunnel.Body);
    }

    [Fact]
    public async Task Origin_form_requests_are_told_this_is_a_proxy()
    {
        using var client = new HttpClient();
        var response = await client.GetAsync($"http://127.0.0.1:{ProxyPort}/hello");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("forward proxy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_CONNECT_with_a_bad_authority_gets_400()
    {
        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, "no-port-here", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(400, tunnel.Status);
        Assert.Contains("must be host:port", tunnel.Body);
    }
}
