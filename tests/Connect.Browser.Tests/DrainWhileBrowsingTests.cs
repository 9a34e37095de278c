using Connect.Browser.Tests.Support;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.Browser.Tests;

/// <summary>
/// A deploy during a test run: node 1 holds the agent's only link and is drained while Chromium, proxying through
/// node 2, keeps loading the private app. A page opened before the drain holds a WebSocket (a busy stream on node 1's
/// link) and must keep working until it closes; pages loaded during the drain use the agent's new link.
/// </summary>
public sealed class DrainWhileBrowsingTests(BrowserCluster cluster) : IClassFixture<BrowserCluster>
{
    [Fact]
    public async Task The_private_app_keeps_working_while_the_node_holding_the_tunnel_drains()
    {
        var draining = cluster[1];
        Assert.Single(draining.Links.All); // the agent's link landed on node 1
        // Two browser sessions of the farm, both proxying through node 2: one opened before the drain, one browsing during it.
        var before = await cluster.Chromium.ThroughProxyAsync(cluster[2].ProxyPort, BrowserCluster.Session, TestNode.Token);
        var during = await cluster.Chromium.ThroughProxyAsync(cluster[2].ProxyPort, BrowserCluster.Session, TestNode.Token);

        // A page open before the drain: its WebSocket is a stream on node 1's link.
        var holder = await before.NewPageAsync();
        await PrivateAppPage.WorksAsync(holder, cluster.AppUrl(https: true), https: true, "before the drain");
        await holder.GotoAsync(cluster.AppUrl(https: false));
        await Microsoft.Playwright.Assertions.Expect(holder.Locator("#ws")).ToHaveTextAsync("echoed");

        var page = await during.NewPageAsync();
        var lifecycle = draining.Services.GetRequiredService<NodeLifecycle>();
        // The drain starts while the page loads through node 2.
        var load = PrivateAppPage.WorksAsync(page, cluster.AppUrl(https: false), https: false, "during the drain 0");
        var drain = lifecycle.DrainAsync("browser test deploy", CancellationToken.None);
        await load;
        Assert.True(lifecycle.IsDraining);

        // Keep browsing while node 1 drains; the held WebSocket keeps its link busy, so the drain cannot finish yet.
        for (var round = 1; round <= 3; round++)
        {
            await PrivateAppPage.WorksAsync(page, cluster.AppUrl(https: round % 2 == 1), https: round % 2 == 1, $"during the drain {round}");
        }
        Assert.False(drain.IsCompleted, "the drain finished while a stream was still open on its link");
        Assert.Equal("still here", await holder.EvaluateAsync<string>("t => window.wsEcho(t)", "still here"));

        // The browser sessions end, as a finished test run's do, and the drain completes with nothing cut. Closing the
        // page alone is not enough: Chromium keeps idle keep-alive CONNECT tunnels (the HTTPS loads) in its socket pool,
        // and an idle tunnel is an open stream to the proxy (it cannot see inside TLS), so it would hold the draining
        // link until Connect:Drain:Deadline reset it.
        await before.CloseAsync();
        await during.CloseAsync();
        await drain.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(lifecycle.IsReadyToTerminate);
        Assert.Equal(0, lifecycle.StreamsResetAtDeadline);
        Assert.Empty(draining.Links.All);

        // After the drain the session is served by another node, through either remaining proxy.
        foreach (var via in new[] { cluster[2], cluster[3] })
        {
            await using var after = await cluster.Chromium.ThroughProxyAsync(via.ProxyPort, BrowserCluster.Session, TestNode.Token);
            await PrivateAppPage.WorksAsync(await after.NewPageAsync(), cluster.AppUrl(https: true), https: true, "after the drain");
        }
    }
}
