using System.Net;
using Connect.Browser.Tests.Support;
using Connect.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Connect.Browser.Tests;

/// <summary>
/// The live operations page (GET /ops on the admin port) in Chromium: it asks for the admin token, lists the
/// sessions that exist, shows a node turn from up to draining to ready to terminate while its session moves, and
/// draws per-node charts from the snapshots the node pushes (GET /v1/events) without asking again.
/// </summary>
public sealed class OpsPageTests(BrowserCluster cluster) : IClassFixture<BrowserCluster>
{
    /// <summary>Where the screenshot goes: TestResults/ under the test's output directory (docs/ops-page-during-drain.png is a copy).</summary>
    public static string ScreenshotPath => Path.Combine(AppContext.BaseDirectory, "TestResults", "ops-page-during-drain.png");

    [Fact]
    public async Task The_page_is_static_and_holds_no_token_while_the_api_keeps_its_auth()
    {
        using var http = new HttpClient();
        var admin = $"http://127.0.0.1:{cluster[3].AdminPort}";
        using var page = await http.GetAsync($"{admin}/ops");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotContain(BrowserCluster.AdminToken, html, StringComparison.Ordinal);
        Assert.DoesNotContain(TestNode.Token, html, StringComparison.Ordinal);
        using var api = await http.GetAsync($"{admin}/v1/nodes");
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        // Only on the admin listener: the proxy port does not serve it.
        using var proxy = await http.GetAsync($"http://127.0.0.1:{cluster[3].ProxyPort}/ops");
        Assert.NotEqual(HttpStatusCode.OK, proxy.StatusCode);
    }

    [Fact]
    public async Task The_page_shows_the_sessions_and_a_draining_node_changing_state()
    {
        var expect = new LocatorAssertionsToBeVisibleOptions { Timeout = 15_000 };
        var attribute = new LocatorAssertionsToHaveAttributeOptions { Timeout = 15_000 };
        await using var second = await TestAgent.StartAsync("farm-2", [cluster[2].TunnelUri]);
        await using var context = await cluster.Chromium.DirectAsync();
        var ops = await context.NewPageAsync();

        // No token yet: the form asks; a wrong token is refused by the API and the form says so.
        await ops.GotoAsync($"http://127.0.0.1:{cluster[3].AdminPort}/ops");
        await Expect(ops.Locator("#login")).ToBeVisibleAsync(expect);
        await ops.FillAsync("#token", "not-the-token");
        await ops.ClickAsync("#login button");
        await Expect(ops.Locator("#login-error")).ToHaveTextAsync("invalid admin token", new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 });

        // ?token= works too, and leaves the address bar at once.
        await ops.GotoAsync($"http://127.0.0.1:{cluster[3].AdminPort}/ops?token={BrowserCluster.AdminToken}");
        await Expect(ops.Locator("#sessions tr[data-session='farm-1']")).ToBeVisibleAsync(expect);
        await Expect(ops.Locator("#sessions tr[data-session='farm-2']")).ToBeVisibleAsync(expect);
        Assert.DoesNotContain("token", ops.Url, StringComparison.Ordinal);
        var node1 = ops.Locator($".node[data-node='{cluster[1].Address}']");
        await Expect(node1).ToHaveAttributeAsync("data-state", "up", attribute);
        await Expect(node1.Locator("li[data-session='farm-1']")).ToBeVisibleAsync(expect);
        await Expect(ops.Locator($".node[data-node='{cluster[2].Address}'] li[data-session='farm-2']")).ToBeVisibleAsync(expect);

        // A browser on the device farm holds a WebSocket through node 2: a busy stream on node 1's link.
        await using var farm = await cluster.Chromium.ThroughProxyAsync(cluster[2].ProxyPort, BrowserCluster.Session, TestNode.Token);
        var app = await farm.NewPageAsync();
        await app.GotoAsync(cluster.AppUrl(https: false));
        await Expect(app.Locator("#ws")).ToHaveTextAsync("echoed");
        await Expect(node1.Locator("li[data-session='farm-1']")).ToContainTextAsync("1 stream", new LocatorAssertionsToContainTextOptions { Timeout = 15_000 });

        // Twenty pushed samples first, so that the screenshot's charts show the link leaving node 1 against some history.
        await Expect(node1.Locator(".chart[data-metric='links']")).ToHaveAttributeAsync("data-samples", new System.Text.RegularExpressions.Regex("^([2-9][0-9]|[1-9][0-9]{2,})$"), new LocatorAssertionsToHaveAttributeOptions { Timeout = 60_000 });

        // Drain node 1 through the admin API: the page shows it draining, and farm-1's new link on another node.
        await BrowserCluster.DrainThroughAdminApiAsync(cluster[3], cluster[1]);
        await Expect(node1).ToHaveAttributeAsync("data-state", "draining", attribute);
        await Expect(ops.Locator($".node:not([data-node='{cluster[1].Address}']) li[data-session='farm-1']")).ToBeVisibleAsync(expect);
        await Expect(ops.Locator("[data-count='draining'] b")).ToHaveTextAsync("1");
        Directory.CreateDirectory(Path.GetDirectoryName(ScreenshotPath)!);
        await ops.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath, FullPage = true });

        // The held page goes; the last stream ends, the old link closes: ready to terminate.
        await app.CloseAsync();
        await Expect(node1).ToHaveAttributeAsync("data-state", "ready", attribute);
        await Expect(node1.Locator(".badge[data-role='state']")).ToHaveTextAsync("safe to stop");
        await Expect(node1.Locator("li[data-session='farm-1']")).ToHaveCountAsync(0);
        await ops.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetDirectoryName(ScreenshotPath)!, "ops-page-after-drain.png"), FullPage = true });
    }

    [Fact]
    public async Task The_charts_move_with_pushed_snapshots_and_the_page_sends_no_second_request()
    {
        var attribute = new LocatorAssertionsToHaveAttributeOptions { Timeout = 20_000 };
        await using var context = await cluster.Chromium.DirectAsync();
        var ops = await context.NewPageAsync();
        var apiRequests = new List<string>();
        ops.Request += (_, request) =>
        {
            if (new Uri(request.Url).AbsolutePath.StartsWith("/v1/", StringComparison.Ordinal))
            {
                lock (apiRequests)
                {
                    apiRequests.Add(request.Url);
                }
            }
        };
        await ops.GotoAsync($"http://127.0.0.1:{cluster[3].AdminPort}/ops?token={BrowserCluster.AdminToken}");
        var links = ops.Locator($".node[data-node='{cluster[2].Address}'] .chart[data-metric='links']");
        await Expect(links).ToHaveAttributeAsync("data-samples", new System.Text.RegularExpressions.Regex("^[1-9]"), attribute);
        var before = int.Parse((await links.GetAttributeAsync("data-last"))!, System.Globalization.CultureInfo.InvariantCulture);

        // An agent connects to node 2: the pushed snapshots carry it into node 2's links chart.
        await using var agent = await TestAgent.StartAsync("charted", [cluster[2].TunnelUri]);
        await Expect(links).ToHaveAttributeAsync("data-last", (before + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), attribute);
        await Expect(ops.Locator("#events li[data-kind='session'][data-subject='charted']")).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 20_000 });
        var samples = int.Parse((await links.GetAttributeAsync("data-samples"))!, System.Globalization.CultureInfo.InvariantCulture);
        await Expect(links).ToHaveAttributeAsync("data-samples", new System.Text.RegularExpressions.Regex($"^(?!{samples}$)[0-9]+$"), attribute);
        Assert.Equal(3, await ops.Locator(".node .chart[data-metric='bytes'] svg").CountAsync());

        // Every update came over the one event stream the page opened: it never asked again.
        lock (apiRequests)
        {
            Assert.Equal([$"http://127.0.0.1:{cluster[3].AdminPort}/v1/events"], apiRequests);
        }
    }
}
