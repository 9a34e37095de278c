using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Connect.Bench.Sim;
using Connect.Testing;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Issue 16 at CI scale: 500 simulated agents (real connect.v1 WebSockets from one process) on a two-node cluster,
/// listed in pages by the admin API, serving a proxy request across nodes, and re-linking after a drain storm.
/// </summary>
public sealed class SimulatorTests(ITestOutputHelper output)
{
    private const int Sessions = 500;
    private const string AdminToken = "admin-token-for-sim-tests-0123";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Five_hundred_simulated_agents_attach_are_paged_serve_requests_and_relink_after_a_drain()
    {
        var settings = new Dictionary<string, string?> { ["Connect:Admin:Token"] = AdminToken };
        await using var node1 = await TestNode.StartAsync(settings: settings);
        await using var node2 = await TestNode.StartAsync(seeds: [node1.Address], settings: settings);
        await node1.WaitMembersUpAsync(2, Bound);

        await using var simulator = new AgentSimulator(new SimulatorOptions
        {
            Servers = [node1.TunnelUri, node2.TunnelUri],
            Token = TestNode.Token,
            Sessions = Sessions,
            SessionPrefix = "sim",
            DialJitter = TimeSpan.FromMilliseconds(500),
        });
        simulator.Start();
        var attached = await simulator.WaitConnectedAsync(Bound);
        await Eventually.UntilAsync(() => node1.Links.Count + node2.Links.Count == Sessions, "every link registered on its node", Bound);
        output.WriteLine($"{Sessions} links open after {attached.TotalSeconds:0.0} s; node 1 {node1.Links.Count}, node 2 {node2.Links.Count}");
        Assert.InRange(node2.Links.Count, Sessions / 2 - 1, Sessions / 2 + 1);

        // Paging: every session exactly once, in name order, with its one link.
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node1.AdminPort}"), Timeout = TimeSpan.FromSeconds(60) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        var names = new List<string>();
        string? after = null;
        for (var page = 0; page < 10; page++)
        {
            using var body = JsonDocument.Parse(await admin.GetStringAsync("/v1/sessions?limit=100" + (after is null ? "" : "&after=" + after)));
            foreach (var session in body.RootElement.GetProperty("sessions").EnumerateArray())
            {
                names.Add(session.GetProperty("name").GetString()!);
                Assert.Equal(1, session.GetProperty("links").GetArrayLength());
            }
            after = body.RootElement.GetProperty("next").GetString();
            if (after is null)
            {
                break;
            }
        }
        Assert.Null(after);
        Assert.Equal(Enumerable.Range(0, Sessions).Select(i => AgentSimulator.SessionName("sim", i)), names);

        // A proxy request on node 1 for a session whose link is on node 2 reaches that simulated agent's target.
        var remote = node2.Links.All.First().SessionId;
        using (var proxy = ProxyClient.Http(node1.ProxyPort, remote))
        {
            Assert.Equal($"ok {remote}\n", await proxy.GetStringAsync("http://app.internal/"));
        }

        // Storm: drain node 2; its agents follow GOAWAY to node 1 and every session is linked again.
        var moving = node2.Links.Count;
        var reconnectsBefore = simulator.Reconnects;
        var storm = Stopwatch.StartNew();
        using (var drain = await admin.PostAsync("/v1/nodes/drain?address=" + Uri.EscapeDataString(node2.Address), null))
        {
            Assert.Equal(System.Net.HttpStatusCode.Accepted, drain.StatusCode);
        }
        await Eventually.UntilAsync(() => node2.Links.Count == 0 && node1.Links.Count == Sessions, "every session re-linked on node 1", Bound);
        output.WriteLine($"drain storm: {moving} links moved to node 1 in {storm.Elapsed.TotalSeconds:0.0} s");
        // The node registers a link just before the agent's handshake completes: the simulator's count follows.
        await Eventually.UntilAsync(() => simulator.Reconnects - reconnectsBefore >= moving, $"{moving} reconnects counted by the simulator", Bound);
        Assert.Equal(Sessions, node1.Links.All.Select(l => l.SessionId).Distinct().Count());
        using (var proxy = ProxyClient.Http(node1.ProxyPort, remote))
        {
            // The moved session serves again, now from its link on node 1.
            Assert.Equal($"ok {remote}\n", await proxy.GetStringAsync("http://app.internal/"));
        }
    }
}
