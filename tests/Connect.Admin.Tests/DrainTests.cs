using System.Net;
using Connect.Admin.Contracts;
using Connect.Admin.Tests.Support;
using ExitCodes = Connect.Ctl.ExitCodes;
using Connect.Host.Admin;
using Connect.Testing;

namespace Connect.Admin.Tests;

/// <summary>The deploy pipeline's check: drain a node through the API of another, and watch `connect ready` flip.</summary>
public sealed class DrainTests(DrainClusterFixture cluster) : IClassFixture<DrainClusterFixture>
{
    [Fact]
    public async Task Connect_ready_flips_from_not_ready_to_ready_as_a_node_drains()
    {
        var node2 = cluster.Node2.Address;
        await Eventually.AssertAsync(async () =>
        {
            var sessions = await AdminApi.GetAsync<SessionsView>(cluster.Node1, "/v1/sessions");
            Assert.Equal(node2, Assert.Single(sessions.Sessions.Single(s => s.Name == "mover").Links).Node);
        });

        var notReady = await AdminApi.CtlAsync(cluster.Node1, "connect", "ready", "-a", node2);
        Assert.Equal(ExitCodes.NotReady, notReady.ExitCode);
        Assert.Contains($"not ready: {node2} holds 1 links and 0 streams", notReady.Output);

        var drain = await AdminApi.CtlAsync(cluster.Node1, "connect", "drain", "-a", node2);
        Assert.Equal(ExitCodes.Ok, drain.ExitCode);
        Assert.Contains($"drain {node2}: drain started", drain.Output);

        var ready = await AdminApi.CtlAsync(cluster.Node1, "connect", "ready", "-a", node2, "--wait", "20");
        Assert.Equal(ExitCodes.Ok, ready.ExitCode);
        Assert.Contains($"ready: {node2} holds no links and no streams (drained)", ready.Output);

        using var probe = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{cluster.Node2.AdminPort}") };
        var readyz = await probe.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyz.StatusCode);
        Assert.StartsWith("draining: 0 links", await readyz.Content.ReadAsStringAsync());

        // The agent followed GOAWAY to its other server; the session lives on, now on node 1.
        await Eventually.AssertAsync(async () =>
        {
            var session = await AdminApi.GetAsync<SessionDetailView>(cluster.Node2, "/v1/sessions/mover");
            Assert.Equal(cluster.Node1.Address, Assert.Single(session.Session.Links).Node);
        });
        var nodes = await AdminApi.GetAsync<NodesView>(cluster.Node1, "/v1/nodes");
        var drained = nodes.Nodes.Single(n => n.Address == node2);
        Assert.True(drained.Draining);
        Assert.True(drained.ReadyToTerminate);
        Assert.False(nodes.Nodes.Single(n => n.Address == cluster.Node1.Address).ReadyToTerminate);
    }

    [Fact]
    public async Task Connect_kick_moves_the_session_to_a_new_link()
    {
        var before = await Eventually.AssertAsync(async () =>
        {
            var detail = await AdminApi.GetAsync<SessionDetailView>(cluster.Node1, "/v1/sessions/kicked");
            return Assert.Single(detail.Session.Links).LinkId;
        });
        var kick = await AdminApi.CtlAsync(cluster.Node2, "connect", "kick", "kicked");
        Assert.Equal(ExitCodes.Ok, kick.ExitCode);
        Assert.Contains("GOAWAY sent to 1 link(s) of session 'kicked'", kick.Output);
        await Eventually.AssertAsync(async () =>
        {
            var detail = await AdminApi.GetAsync<SessionDetailView>(cluster.Node1, "/v1/sessions/kicked");
            var link = Assert.Single(detail.Session.Links);
            Assert.NotEqual(before, link.LinkId);
            Assert.False(link.GoingAway);
        });

        var unknown = await AdminApi.CtlAsync(cluster.Node1, "cluster", "down", "-a", "10.9.9.9:1");
        Assert.Equal(ExitCodes.Failed, unknown.ExitCode);
        Assert.Contains("no single cluster member matches", unknown.Error);
    }
}
