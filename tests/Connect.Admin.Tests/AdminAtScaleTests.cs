using System.Diagnostics;
using System.Text.Json;
using Connect.Admin.Contracts;
using Connect.Actors.Links;
using Connect.Admin.Tests.Support;
using ExitCodes = Connect.Ctl.ExitCodes;
using Connect.Host.Admin;
using Connect.Host.Draining;
using Microsoft.Extensions.DependencyInjection;
using Connect.Routing.Links;
using Connect.Testing;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;
using Xunit.Abstractions;

namespace Connect.Admin.Tests;

/// <summary>
/// Issue 16: a node holding 10,000 links, seen from another node. Its counts reach /v1/nodes, connectctl's
/// <c>cluster show</c> and the deploy gate <c>connect ready -a</c>, and /v1/sessions lists every session once in
/// pages. The links are registered straight into node 2's registry (10,000 real sockets are too heavy for CI; the
/// admin path reads the registry either way, and docs/SCALING.md has the run with real sockets).
/// </summary>
public sealed class AdminAtScaleTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int LinkCount = 10_000;

    private TestNode _node1 = null!;
    private TestNode _node2 = null!;

    public async Task InitializeAsync()
    {
        _node1 = await TestNode.StartAsync(settings: AdminApi.Settings);
        // A fixed tunnel port: node 2 advertises its tunnel URL, so it can appear in node 1's GOAWAY suggestions.
        _node2 = await TestNode.StartAsync(seeds: [_node1.Address], settings: AdminApi.Settings, tunnelPort: FreePorts.Next());
        await ClusterFixture.WaitMembersUpAsync([_node1, _node2], 2);
        var since = DateTimeOffset.UtcNow;
        for (var i = 0; i < LinkCount; i++)
        {
            // An idle multiplexer that never runs: what the admin path reads from a link (its counts) is all there.
            var session = $"scale-{i:D5}";
            var mux = new TunnelMux(new StreamFrameTransport(Stream.Null, "test"), new MuxOptions { IsDialer = false });
            _node2.Links.Add(new TunnelLink($"{session}.0123456789", session, mux, $"127.0.0.1:{10_000 + (i % 50_000)}", since));
        }
    }

    public async Task DisposeAsync()
    {
        await _node2.DisposeAsync();
        await _node1.DisposeAsync();
    }

    [Fact]
    public async Task A_node_with_10000_links_is_counted_and_judged_from_another_node()
    {
        var clock = Stopwatch.StartNew();
        var nodes = await AdminApi.GetAsync<NodesView>(_node1, "/v1/nodes");
        output.WriteLine($"/v1/nodes from node 1: {clock.ElapsedMilliseconds} ms");
        var seen = nodes.Nodes.Single(n => n.Address == _node2.Address);
        Assert.Null(seen.Error);
        Assert.Equal(LinkCount, seen.Links);
        Assert.Equal(LinkCount, seen.Sessions);
        Assert.Equal(0, seen.Streams);
        Assert.False(seen.ReadyToTerminate);

        clock.Restart();
        var show = await AdminApi.CtlAsync(_node1, "cluster", "show");
        output.WriteLine($"connectctl cluster show: {clock.ElapsedMilliseconds} ms\n{show}");
        Assert.Equal(ExitCodes.Ok, show.ExitCode);
        Assert.Contains(show.Output.Split('\n'), l => l.StartsWith(_node2.Address + " ") && l.Contains($" {LinkCount} "));
        Assert.DoesNotContain("warning", show.Error);

        var gate = await AdminApi.CtlAsync(_node1, "connect", "ready", "-a", _node2.Address);
        Assert.Equal(ExitCodes.NotReady, gate.ExitCode);
        Assert.Contains($"holds {LinkCount} links and 0 streams", gate.Output);
        var ready = await AdminApi.CtlAsync(_node2, "connect", "ready", "-a", _node1.Address);
        Assert.Equal(ExitCodes.Ok, ready.ExitCode);
        Assert.StartsWith("ready:", ready.Output);
    }

    [Fact]
    public async Task A_draining_node_with_10000_links_is_never_suggested_to_agents_and_is_recognised_at_once()
    {
        var node1 = _node1.Services.GetRequiredService<NodeLifecycle>();
        Assert.Contains($"ws://127.0.0.1:{_node2.TunnelPort}", node1.SuggestedServers());
        _ = _node2.Services.GetRequiredService<NodeLifecycle>().DrainAsync("test: blue node at scale", CancellationToken.None);
        await Eventually.UntilAsync(() => _node2.Services.GetRequiredService<NodeLifecycle>().IsDraining, "node 2 draining", TimeSpan.FromSeconds(10));

        // What a drain of node 1 does before its GOAWAYs: ask every peer whether it drains. A peer's whole link list
        // (the old question) was over the remoting frame at this size: no answer within the 5 s ask, so the draining
        // peer was suggested and every drain waited those 5 s first.
        var clock = Stopwatch.StartNew();
        await node1.RefreshSuggestionsAsync(CancellationToken.None);
        output.WriteLine($"peers asked in {clock.ElapsedMilliseconds} ms; suggested: [{string.Join(", ", node1.SuggestedServers())}]");
        Assert.Empty(node1.SuggestedServers());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"asking one peer took {clock.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task Sessions_of_a_node_with_10000_links_are_listed_once_each_in_pages()
    {
        var names = new List<string>();
        string? after = null;
        var pages = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            using var client = AdminApi.Client(_node1);
            var body = await client.GetStringAsync("/v1/sessions?limit=1000" + (after is null ? "" : "&after=" + after));
            using var page = JsonDocument.Parse(body);
            var sessions = page.RootElement.GetProperty("sessions");
            Assert.True(sessions.GetArrayLength() <= 1000);
            foreach (var s in sessions.EnumerateArray())
            {
                names.Add(s.GetProperty("name").GetString()!);
                Assert.Equal("idle", s.GetProperty("state").GetString());
                Assert.Equal(_node2.Address, s.GetProperty("links")[0].GetProperty("node").GetString());
            }
            Assert.Equal(0, page.RootElement.GetProperty("errors").GetArrayLength());
            after = page.RootElement.TryGetProperty("next", out var next) ? next.GetString() : null;
            Assert.True(++pages <= 20, "more pages than 10,000 sessions need");
        }
        while (after is not null);
        output.WriteLine($"/v1/sessions, {pages} pages of up to 1000: {clock.ElapsedMilliseconds} ms");

        Assert.Equal(LinkCount, names.Count);
        Assert.Equal(Enumerable.Range(0, LinkCount).Select(i => $"scale-{i:D5}"), names);

        var all = await AdminApi.CtlAsync(_node2, "connect", "sessions", "--all", "--limit", "700");
        Assert.Equal(ExitCodes.Ok, all.ExitCode);
        Assert.Equal(LinkCount + 1, all.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        var first = await AdminApi.CtlAsync(_node2, "connect", "sessions", "--limit", "5");
        Assert.Equal(5 + 1, first.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("--after scale-00004", first.Error);
    }
}
