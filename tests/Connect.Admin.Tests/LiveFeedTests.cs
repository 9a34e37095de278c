using System.Net;
using System.Text.Json;
using Connect.Admin.Contracts;
using Connect.Admin.Tests.Support;
using Connect.Ctl;
using Connect.Testing;

namespace Connect.Admin.Tests;

/// <summary>
/// The live feed (<c>GET /v1/events</c>, Server-Sent Events) over real HTTP: changes arrive on one open response
/// without another request; <c>connect watch</c> and <c>connect session --requests</c> show a session's requests with
/// the node that took each one and the node whose link carried it.
/// </summary>
public sealed class LiveFeedTests(LiveClusterFixture cluster) : IClassFixture<LiveClusterFixture>
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task The_event_stream_pushes_a_new_session_and_its_links_leaving_on_one_open_response()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var http = new HttpClient();
        var events = new AdminClient(http, $"127.0.0.1:{cluster.Node2.AdminPort}", AdminApi.Token).EventsAsync("/v1/events", timeout.Token).GetAsyncEnumerator(timeout.Token);

        // First the introduction: every member once, then a snapshot that already counts the steady session's link.
        var introduced = new List<LiveChange>();
        LiveSnapshot? snapshot = null;
        while (snapshot is null)
        {
            Assert.True(await events.MoveNextAsync(), "the stream ended before its first snapshot");
            var (type, data) = events.Current;
            if (type == LiveEventTypes.Change)
            {
                introduced.Add(JsonSerializer.Deserialize<LiveChange>(data, Json)!);
            }
            else if (type == LiveEventTypes.Snapshot)
            {
                snapshot = JsonSerializer.Deserialize<LiveSnapshot>(data, Json)!;
            }
        }
        Assert.Equal(new[] { cluster.Node1.Address, cluster.Node2.Address }.Order(StringComparer.Ordinal), introduced.Where(c => c.Kind == "member").Select(c => c.Subject).Order(StringComparer.Ordinal));
        Assert.Contains(snapshot.Sessions.Sessions, s => s.Name == "steady");
        Assert.All(snapshot.Nodes.Nodes, n => Assert.NotNull(n.BytesIn));

        // An agent connects after the stream opened: the same response carries the change.
        var agent = await TestAgent.StartAsync("pushed", [cluster.Node1.TunnelUri]);
        var appeared = await NextChangeAsync(events, c => c.Subject == "pushed");
        Assert.Equal("session", appeared.Kind);
        Assert.Contains($"1 link on {cluster.Node1.Address}", appeared.Detail);

        await agent.DisposeAsync();
        var left = await NextChangeAsync(events, c => c.Subject == "pushed");
        Assert.Contains(left.Kind, new[] { "session-links", "session-state", "session-gone" });
        await events.DisposeAsync();
    }

    [Fact]
    public async Task The_event_stream_needs_the_admin_token_and_a_valid_session_name()
    {
        using var client = AdminApi.Client(cluster.Node1, token: null);
        using var anonymous = await client.GetAsync("/v1/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);

        using var authorized = AdminApi.Client(cluster.Node1);
        using var bad = await authorized.GetAsync("/v1/events?session=" + Uri.EscapeDataString("no spaces allowed"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("session name", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Connect_watch_prints_the_session_then_each_new_request_with_its_entry_node_and_link_node()
    {
        await using var agent = await TestAgent.StartAsync("watched", [cluster.Node1.TunnelUri]);
        var url = $"http://127.0.0.1:{cluster.Targets.HttpPort}/hello?watched";
        // Through node 2's proxy: the request enters at node 2 and rides the session's link on node 1.
        async Task RequestAsync(int n)
        {
            using var proxy = ProxyClient.Http(cluster.Node2.ProxyPort, "watched");
            Assert.Equal(HttpStatusCode.OK, (await proxy.GetAsync($"{url}&n={n}")).StatusCode);
        }
        await RequestAsync(0);

        // The session's state first, then the request already made (history), then what happens while it watches: the
        // requests made meanwhile, and a session line whenever the sampled state changes (idle <-> busy, at most one a
        // second; requests come twice a second), so six events always hold at least one new request.
        var watch = AdminApi.CtlAsync(cluster.Node2, "connect", "watch", "watched", "--max-events", "6");
        for (var n = 1; n <= 60 && !watch.IsCompleted; n++)
        {
            await Task.WhenAny(watch, Task.Delay(500));
            if (!watch.IsCompleted)
            {
                await RequestAsync(n);
            }
        }
        var result = await watch.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.Contains("session watched: ", lines[0]);
        Assert.Contains($"on {cluster.Node1.Address}", lines[0]);
        Assert.Contains($"request  GET {url}&n=0 200 ", lines[1]);
        var later = lines.Skip(2).ToList();
        Assert.All(later, l => Assert.True(l.Contains("session watched: ") || l.Contains("request  GET "), $"neither a session nor a request line: {l}"));
        Assert.Contains(later, l => System.Text.RegularExpressions.Regex.IsMatch(l, $@"request  GET {System.Text.RegularExpressions.Regex.Escape(url)}&n=[1-9][0-9]* 200 "));
        Assert.All(lines.Where(l => l.Contains("request  GET ")), l => Assert.Contains($"entry {cluster.Node2.Address} link {cluster.Node1.Address}", l));
    }

    [Fact]
    public async Task Connect_session_requests_lists_the_last_requests_cluster_wide_with_entry_and_link_node()
    {
        var local = $"http://127.0.0.1:{cluster.Targets.HttpPort}/hello?via-node1";
        var remote = $"127.0.0.1:{cluster.Targets.EchoPort}";
        using (var proxy = ProxyClient.Http(cluster.Node1.ProxyPort, "steady"))
        {
            Assert.Equal(HttpStatusCode.OK, (await proxy.GetAsync(local)).StatusCode);
        }
        using (var tunnel = await ProxyClient.ConnectAsync(cluster.Node2.ProxyPort, remote, ProxyClient.Basic("steady")))
        {
            Assert.Equal(200, tunnel.Status);
            await tunnel.Stream.WriteAsync(new byte[100]);
            tunnel.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            await tunnel.Stream.CopyToAsync(Stream.Null);
        }

        var json = await Eventually.AssertAsync(async () =>
        {
            var r = await AdminApi.CtlAsync(cluster.Node2, "connect", "session", "steady", "--requests", "--json");
            Assert.Equal(ExitCodes.Ok, r.ExitCode);
            var view = JsonSerializer.Deserialize<SessionRequestsView>(r.Output, Json)!;
            Assert.Contains(view.Requests, x => x.Target == remote && x.Method == "CONNECT");
            return view;
        });
        var get = Assert.Single(json.Requests, x => x.Target == local);
        Assert.Equal((cluster.Node1.Address, cluster.Node1.Address, 200), (get.EntryNode, get.LinkNode, get.Status));
        var connect = Assert.Single(json.Requests, x => x.Target == remote && x.Method == "CONNECT");
        Assert.Equal((cluster.Node2.Address, cluster.Node1.Address, 100L), (connect.EntryNode, connect.LinkNode, connect.BytesUp));

        var table = await AdminApi.CtlAsync(cluster.Node1, "connect", "session", "steady", "--requests");
        Assert.Equal(ExitCodes.Ok, table.ExitCode);
        Assert.Matches(@"(?m)^TIME\s+METHOD\s+TARGET\s+STATUS\s+UP\s+DOWN\s+MS\s+ENTRY NODE\s+LINK NODE\s+ERROR$", table.Output);
        Assert.Contains(table.Output.Split('\n'), l => l.Contains($"CONNECT  {remote}") && l.Contains($"{cluster.Node2.Address}  {cluster.Node1.Address}"));

        var none = await AdminApi.CtlAsync(cluster.Node1, "connect", "session", "never-used", "--requests");
        Assert.Equal(ExitCodes.Ok, none.ExitCode);
        Assert.Contains("no requests of session never-used", none.Output);
    }

    private static async Task<LiveChange> NextChangeAsync(IAsyncEnumerator<(string Type, string Data)> events, Func<LiveChange, bool> wanted)
    {
        while (await events.MoveNextAsync())
        {
            if (events.Current.Type == LiveEventTypes.Change && JsonSerializer.Deserialize<LiveChange>(events.Current.Data, Json) is { } change && wanted(change))
            {
                return change;
            }
        }
        throw new InvalidOperationException("the event stream ended before the change came");
    }
}

/// <summary>Its own two-node cluster for the live feed: "steady" on node 1, and the private apps; tests add agents of their own.</summary>
public sealed class LiveClusterFixture : IAsyncLifetime
{
    public TestTargets Targets { get; private set; } = null!;

    public TestNode Node1 { get; private set; } = null!;

    public TestNode Node2 { get; private set; } = null!;

    private TestAgent _steady = null!;

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        Node1 = await TestNode.StartAsync(settings: AdminApi.Settings);
        Node2 = await TestNode.StartAsync(seeds: [Node1.Address], settings: AdminApi.Settings);
        await ClusterFixture.WaitMembersUpAsync([Node1, Node2], 2);
        _steady = await TestAgent.StartAsync("steady", [Node1.TunnelUri]);
    }

    public async Task DisposeAsync()
    {
        await _steady.DisposeAsync();
        await Node2.DisposeAsync();
        await Node1.DisposeAsync();
        await Targets.DisposeAsync();
    }
}
