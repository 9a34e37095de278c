using System.Net;
using System.Text.Json;
using Connect.Admin.Contracts;
using Connect.Admin.Tests.Support;
using Connect.Host.Admin;
using Connect.Testing;

namespace Connect.Admin.Tests;

/// <summary>Each admin API view returns what is really in the cluster, asked from either node.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AdminApiTests(ClusterFixture cluster)
{
    private TestNode[] BothNodes => [cluster.Node1, cluster.Node2];

    [Fact]
    public async Task Nodes_view_from_either_node_shows_both_members_and_the_links_each_holds()
    {
        foreach (var asked in BothNodes)
        {
            var view = await Eventually.AssertAsync(async () =>
            {
                var nodes = await AdminApi.GetAsync<NodesView>(asked, "/v1/nodes");
                Assert.Equal(2, nodes.Nodes.Count);
                Assert.Equal(2, nodes.Nodes.Single(n => n.Address == cluster.Node1.Address).Links);
                Assert.Equal(1, nodes.Nodes.Single(n => n.Address == cluster.Node2.Address).Links);
                Assert.Equal(3, nodes.Nodes.Sum(n => n.Entities));
                return nodes;
            });
            Assert.Equal(asked.Address, view.Self);
            Assert.NotNull(view.Leader);
            Assert.All(view.Nodes, n =>
            {
                Assert.Equal("Up", n.Status);
                Assert.True(n.Reachable);
                Assert.Equal(false, n.Draining);
                Assert.Equal(0, n.Streams);
                Assert.False(n.ReadyToTerminate); // each holds links
                Assert.Null(n.Error);
            });
            Assert.Equal(2, view.Nodes.Single(n => n.Address == cluster.Node1.Address).Sessions);
            Assert.Single(view.Nodes, n => n.Self);
        }
    }

    [Fact]
    public async Task Sessions_view_lists_the_sessions_created_with_their_link_nodes_from_either_node()
    {
        foreach (var asked in BothNodes)
        {
            var view = await Eventually.AssertAsync(async () =>
            {
                var sessions = await AdminApi.GetAsync<SessionsView>(asked, "/v1/sessions");
                Assert.Equal(ClusterFixture.Sessions, sessions.Sessions.Select(s => s.Name).Order());
                Assert.All(sessions.Sessions, s => Assert.Single(s.Links));
                return sessions;
            });
            Assert.Empty(view.Errors);
            Assert.Equal(cluster.Node2.Address, view.Sessions.Single(s => s.Name == "beta").Links[0].Node);
            Assert.Equal(cluster.Node1.Address, view.Sessions.Single(s => s.Name == "alpha").Links[0].Node);
            Assert.All(view.Sessions, s => Assert.Contains(s.EntityNode, new[] { cluster.Node1.Address, cluster.Node2.Address }));

            var onNode2 = await AdminApi.GetAsync<SessionsView>(asked, "/v1/sessions?node=" + Uri.EscapeDataString(cluster.Node2.Address));
            Assert.Contains(onNode2.Sessions, s => s.Name == "beta");
            Assert.All(onNode2.Sessions, s => Assert.True(s.EntityNode == cluster.Node2.Address || s.Links.Any(l => l.Node == cluster.Node2.Address)));

            var idle = await AdminApi.GetAsync<SessionsView>(asked, "/v1/sessions?state=idle");
            Assert.Equal(ClusterFixture.Sessions, idle.Sessions.Select(s => s.Name).Order());
            var disconnected = await AdminApi.GetAsync<SessionsView>(asked, "/v1/sessions?state=disconnected");
            Assert.Empty(disconnected.Sessions);
        }
        using var client = AdminApi.Client(cluster.Node1);
        var bad = await client.GetAsync("/v1/sessions?state=sleepy");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("idle, busy, draining or disconnected", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Session_detail_from_the_other_node_shows_an_open_stream_with_its_target_and_bytes()
    {
        var target = $"127.0.0.1:{cluster.Targets.EchoPort}";
        // Through node 1, which holds alpha's link (cross-node proxying is another issue's work).
        using var tunnel = await ProxyClient.ConnectAsync(cluster.Node1.ProxyPort, target, ProxyClient.Basic("alpha"));
        Assert.Equal(200, tunnel.Status);
        var payload = new byte[1000];
        await tunnel.Stream.WriteAsync(payload);
        await tunnel.Stream.ReadExactlyAsync(new byte[payload.Length]);

        var detail = await Eventually.AssertAsync(async () =>
        {
            var d = await AdminApi.GetAsync<SessionDetailView>(cluster.Node2, "/v1/sessions/alpha");
            var stream = Assert.Single(d.Streams);
            Assert.True(stream.BytesIn >= payload.Length && stream.BytesOut >= payload.Length, $"bytes {stream.BytesIn}/{stream.BytesOut}");
            Assert.Equal("busy", d.Session.State);
            return d;
        });
        var open = detail.Streams[0];
        Assert.Equal(target, open.Target);
        Assert.Equal(cluster.Node1.Address, open.Node);
        Assert.Equal(detail.Session.Links[0].LinkId, open.LinkId);
        Assert.True(open.AgeSeconds >= 0);

        tunnel.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        await Eventually.AssertAsync(async () =>
        {
            var d = await AdminApi.GetAsync<SessionDetailView>(cluster.Node1, "/v1/sessions/alpha");
            Assert.Empty(d.Streams);
            Assert.Equal("idle", d.Session.State);
        });
    }

    [Fact]
    public async Task An_unknown_session_is_404_and_does_not_create_an_entity()
    {
        using var client = AdminApi.Client(cluster.Node2);
        var response = await client.GetAsync("/v1/sessions/no-such-session");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("session 'no-such-session' is not known", await response.Content.ReadAsStringAsync());
        var sessions = await AdminApi.GetAsync<SessionsView>(cluster.Node1, "/v1/sessions");
        Assert.DoesNotContain(sessions.Sessions, s => s.Name == "no-such-session");
    }

    [Fact]
    public async Task Sharding_view_counts_the_session_entities_per_node()
    {
        foreach (var asked in BothNodes)
        {
            var view = await Eventually.AssertAsync(async () =>
            {
                var sharding = await AdminApi.GetAsync<ShardingView>(asked, "/v1/sharding");
                var region = Assert.Single(sharding.Regions);
                Assert.Equal(3, region.Entities);
                return sharding;
            });
            var session = view.Regions[0];
            Assert.Equal("session", session.TypeName);
            Assert.Null(session.Error);
            Assert.Equal(2, session.Nodes.Count);
            Assert.Equal(session.Shards, session.Nodes.Sum(n => n.Shards));
            Assert.Equal(3, session.Nodes.Sum(n => n.EntitiesPerShard.Values.Sum()));
        }
    }

    [Fact]
    public async Task Admin_calls_without_the_right_token_get_401_with_a_reason()
    {
        foreach (var (token, reason) in new[] { ((string?)null, "Authorization: Bearer"), ("wrong-token", "invalid admin token") })
        {
            using var client = AdminApi.Client(cluster.Node1, token);
            foreach (var path in new[] { "/v1/nodes", "/v1/sessions", "/v1/sessions/alpha", "/v1/sharding" })
            {
                var response = await client.GetAsync(path);
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                Assert.Contains(reason, await response.Content.ReadAsStringAsync());
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
            }
            var drain = await client.PostAsync("/v1/nodes/drain", null);
            Assert.Equal(HttpStatusCode.Unauthorized, drain.StatusCode);
        }
        Assert.DoesNotContain((await AdminApi.GetAsync<NodesView>(cluster.Node1, "/v1/nodes")).Nodes, n => n.Draining == true);
    }

    [Fact]
    public async Task Health_endpoints_answer_on_the_admin_listener_only()
    {
        using var client = AdminApi.Client(cluster.Node1, token: null);
        Assert.Equal("ok\n", await client.GetStringAsync("/healthz"));
        Assert.Equal("ready\n", await client.GetStringAsync("/readyz"));
        using var tunnelPort = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{cluster.Node1.TunnelPort}") };
        Assert.Equal(HttpStatusCode.NotFound, (await tunnelPort.GetAsync("/readyz")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await tunnelPort.GetAsync("/metrics")).StatusCode);
        using var tunnelAdmin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{cluster.Node1.TunnelPort}") };
        tunnelAdmin.DefaultRequestHeaders.Authorization = new("Bearer", AdminApi.Token);
        Assert.Equal(HttpStatusCode.NotFound, (await tunnelAdmin.GetAsync("/v1/nodes")).StatusCode);
    }

    [Fact]
    public async Task Node_info_messages_round_trip_through_the_connect_serializer()
    {
        var system = (Akka.Actor.ExtendedActorSystem)cluster.Node1.Services.GetService(typeof(Akka.Actor.ActorSystem))!;
        var info = new Connect.Actors.Protocol.NodeInfo(
            "akka.tcp://connect@127.0.0.1:1",
            true,
            3,
            [new Connect.Actors.Protocol.LinkInfo("s.1", "s", "127.0.0.1:5", DateTimeOffset.UnixEpoch, 1, 7, 10, 20, true,
                [new Connect.Actors.Protocol.StreamInfo(5, "app.internal:443", DateTimeOffset.UnixEpoch, 10, 20)])],
            ["s", "t"],
            2,
            null);
        object[] messages = [Connect.Actors.Protocol.GetNodeInfo.Instance, info, new Connect.Actors.Protocol.DrainNode("why"), new Connect.Actors.Protocol.DrainStarted("a", true, 1, 2)];
        foreach (var message in messages)
        {
            var serializer = system.Serialization.FindSerializerFor(message);
            Assert.IsType<Connect.Actors.Serialization.ConnectMessageSerializer>(serializer);
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            var back = system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
            Assert.Equal(message.GetType(), back.GetType());
            Assert.Equal(JsonSerializer.Serialize(message, message.GetType()), JsonSerializer.Serialize(back, back.GetType()));
        }
    }
}
