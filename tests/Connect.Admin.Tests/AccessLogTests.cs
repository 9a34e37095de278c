using System.Net;
using Connect.Admin.Tests.Support;
using Connect.Proxy;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.Admin.Tests;

/// <summary>One structured access-log line (event 2010) per proxied request and per CONNECT tunnel, successful or not.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AccessLogTests(ClusterFixture cluster)
{
    private IEnumerable<CapturingLoggerProvider.Entry> AccessLines(string target) =>
        cluster.Logs.Entries.Where(e => e.EventId.Id == 2010 && e.State.GetValueOrDefault("Target")?.ToString() == target);

    [Fact]
    public async Task A_CONNECT_tunnel_and_an_absolute_form_request_each_write_one_line_with_their_fields()
    {
        var tunnelTarget = $"127.0.0.1:{cluster.Targets.EchoPort}";
        using (var tunnel = await ProxyClient.ConnectAsync(cluster.Node1.ProxyPort, tunnelTarget, ProxyClient.Basic("alpha")))
        {
            Assert.Equal(200, tunnel.Status);
            await tunnel.Stream.WriteAsync(new byte[3000]);
            tunnel.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            await tunnel.Stream.CopyToAsync(Stream.Null);
        }
        var line = await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(AccessLines(tunnelTarget),
            e => Equals(e.State["SessionId"], "alpha") && (long)e.State["BytesUp"]! == 3000)));
        Assert.Equal("CONNECT", line.State["Method"]);
        Assert.Equal(200, line.State["Status"]);
        Assert.Equal(3000L, line.State["BytesDown"]);
        Assert.Equal(cluster.Node1.Address, line.State["EntryNode"]);
        Assert.Equal(cluster.Node1.Address, line.State["LinkNode"]); // alpha's link is on node 1 too
        Assert.Equal("-", line.State["ProxyError"]);
        Assert.Equal("Connect.Proxy.AccessLog", line.Category);

        var url = $"http://127.0.0.1:{cluster.Targets.HttpPort}/hello?access-log";
        using (var client = ProxyClient.Http(cluster.Node1.ProxyPort, "alpha"))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(url)).StatusCode);
        }
        var get = await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(AccessLines(url), e => Equals(e.State["Status"], 200))));
        Assert.Equal("GET", get.State["Method"]);
        Assert.Equal("alpha", get.State["SessionId"]);
        Assert.Contains(cluster.Node1.Services.GetRequiredService<AccessLog>().Recent("alpha"), e => e.Target == url && e.Status == 200);
    }

    [Fact]
    public async Task A_request_that_never_got_its_response_still_names_the_link_that_carried_it()
    {
        // The target takes the request and never answers; the client gives up. The request did go through beta's
        // link on node 2, and the access line must say so: "link=-" would read as "never reached a tunnel".
        await using var silent = RecordingListener.Silent();
        var url = $"http://127.0.0.1:{silent.Port}/never-answers";
        using (var client = ProxyClient.Http(cluster.Node1.ProxyPort, "beta"))
        {
            client.Timeout = TimeSpan.FromSeconds(2);
            await Assert.ThrowsAnyAsync<Exception>(() => client.GetAsync(url));
        }
        Assert.Contains("GET /never-answers", silent.Received);
        var line = await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(AccessLines(url), e => Equals(e.State["SessionId"], "beta"))));
        Assert.Equal("ClientAborted", line.State["ProxyError"]);
        Assert.Equal(cluster.Node1.Address, line.State["EntryNode"]);
        Assert.Equal(cluster.Node2.Address, line.State["LinkNode"]);
    }

    [Fact]
    public async Task A_refused_request_is_logged_with_its_status_and_error()
    {
        var url = "http://access-log-refused.invalid:81/";
        using (var client = ProxyClient.Http(cluster.Node1.ProxyPort, "gamma"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync(url)).StatusCode);
        }
        // Two lines: the client's first try without credentials (407), then the refusal (403).
        await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(AccessLines(url), e => Equals(e.State["Status"], 407))));
        var line = await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(AccessLines(url), e => Equals(e.State["Status"], 403))));
        Assert.Equal("DestinationNotAllowed", line.State["ProxyError"]);
        Assert.Equal("gamma", line.State["SessionId"]);
    }

    [Fact]
    public async Task The_access_log_can_be_switched_off()
    {
        var logs = new CapturingLoggerProvider();
        var settings = new Dictionary<string, string?> { ["Connect:Proxy:AccessLog"] = "false", ["Logging:LogLevel:Connect"] = "Information" };
        await using var node = await TestNode.StartAsync(settings: settings, configure: b => b.Logging.AddProvider(logs));
        using (var client = new HttpClient(new HttpClientHandler { Proxy = new WebProxy($"http://127.0.0.1:{node.ProxyPort}"), UseProxy = true }))
        {
            Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, (await client.GetAsync("http://localhost:1/off")).StatusCode);
        }
        // The request's failure line (2001) is written in the same request before the access line would be.
        await Eventually.AssertAsync(() => Task.FromResult(Assert.Single(logs.Entries, e => e.EventId.Id == 2001)));
        Assert.False(node.Services.GetRequiredService<AccessLog>().Enabled);
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 2010);
    }
}
