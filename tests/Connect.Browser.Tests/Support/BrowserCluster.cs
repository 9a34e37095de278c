using System.Globalization;
using System.Text.RegularExpressions;
using Connect.Testing;

namespace Connect.Browser.Tests.Support;

/// <summary>
/// Three real nodes in this process, the private apps on loopback (the agent's side), one agent for session
/// <see cref="Session"/> whose link lands on node 1, and a Chromium. Each test class gets its own, because some drain a node.
/// </summary>
public sealed partial class BrowserCluster : IAsyncLifetime
{
    public const string Session = "farm-1";

    public const string AdminToken = "admin-token-0123456789";

    private static readonly Dictionary<string, string?> Settings = new() { ["Connect:Admin:Token"] = AdminToken };

    public TestNode[] Nodes { get; private set; } = [];

    public TestTargets Targets { get; private set; } = null!;

    public TestAgent Agent { get; private set; } = null!;

    public Chromium Chromium { get; private set; } = null!;

    public TestNode this[int number] => Nodes[number - 1];

    public async Task InitializeAsync()
    {
        var launch = Chromium.LaunchAsync();
        Targets = await TestTargets.StartAsync();
        var first = await TestNode.StartAsync(settings: Settings);
        var rest = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => TestNode.StartAsync(seeds: [first.Address], settings: Settings)));
        Nodes = [first, .. rest];
        await Task.WhenAll(Nodes.Select(n => n.WaitMembersUpAsync(3, TimeSpan.FromSeconds(30))));
        // Node 1 first in the list: the agent's only link lands there.
        Agent = await TestAgent.StartAsync(Session, Nodes.Select(n => n.TunnelUri));
        Chromium = await launch;
    }

    /// <summary>The private app's page as the browser names it: on the agent's side, reachable only through the tunnel's view of loopback.</summary>
    public string AppUrl(bool https) => https ? $"https://localhost:{Targets.HttpsPort}/app" : $"http://localhost:{Targets.HttpPort}/app";

    /// <summary>Asks a node's admin API to drain <paramref name="target"/>, as an SRE or a deploy pipeline does.</summary>
    public static async Task DrainThroughAdminApiAsync(TestNode via, TestNode target)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{via.AdminPort}/v1/nodes/drain?address={Uri.EscapeDataString(target.Address)}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        using var response = await http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
    }

    /// <summary>How many proxy requests (absolute-form and CONNECT) a node has finished, from its Prometheus text.</summary>
    public static async Task<long> ProxyRequestsAsync(TestNode node)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{node.AdminPort}/metrics");
        return ProxyRequestsLine().Matches(text).Sum(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^connect_proxy_requests_total\{[^}]*\} (\d+)", RegexOptions.Multiline)]
    private static partial Regex ProxyRequestsLine();

    public async Task DisposeAsync()
    {
        if (Chromium is not null)
        {
            await Chromium.DisposeAsync();
        }
        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }
        foreach (var node in Nodes.Reverse())
        {
            await node.DisposeAsync();
        }
        await Targets.DisposeAsync();
    }
}
