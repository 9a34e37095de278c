using Connect.Browser.Tests.Support;
using Connect.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Connect.Browser.Tests;

/// <summary>
/// The device farm's view: Chromium uses a Connect node as its proxy (credentials given after the 407) and renders
/// a private app that only the agent's side can reach: its script, image, fetch() to an API, WebSocket, form POST,
/// over HTTP (absolute-form) and over HTTPS with a self-signed certificate (CONNECT). Through every node of a
/// 3-node cluster, with the agent's link on node 1.
/// </summary>
public sealed class PrivateAppTests(BrowserCluster cluster) : IClassFixture<BrowserCluster>
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Chromium_renders_the_private_app_through_each_node(int number)
    {
        var node = cluster[number];
        var before = await BrowserCluster.ProxyRequestsAsync(node);
        await using var context = await cluster.Chromium.ThroughProxyAsync(node.ProxyPort, BrowserCluster.Session, TestNode.Token);
        var page = await context.NewPageAsync();

        foreach (var https in new[] { false, true })
        {
            await PrivateAppPage.WorksAsync(page, cluster.AppUrl(https), https, $"note via node {number}");
        }

        // The requests really went through this node's proxy port (Chromium did not go to loopback directly).
        Assert.True(await BrowserCluster.ProxyRequestsAsync(node) > before, $"node {number} counted no proxy request");
    }
}
