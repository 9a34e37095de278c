using System.Net;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Connect.Cluster.Tests.Support;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// Cluster bootstrap (Akka.Management + Akka.Discovery) instead of seed nodes: three nodes find each other through
/// config discovery, or through the Kubernetes API (a fake API server here, read by the node's real pod-list client), form
/// exactly one cluster, and a restarted node joins that cluster instead of forming an island.
/// </summary>
public sealed class ClusterBootstrapTests(ITestOutputHelper output)
{
    private static readonly TimeSpan FormBound = TimeSpan.FromSeconds(60);

    /// <summary>Settings every bootstrapping test node shares: no seeds, quick probing so the test does not wait for production margins.</summary>
    private static Dictionary<string, string?> BootstrapSettings(string discovery, int managementPort) => new()
    {
        ["Connect:Cluster:Bootstrap:Discovery"] = discovery,
        ["Connect:Cluster:Bootstrap:ManagementPort"] = managementPort.ToString(),
        ["Connect:Cluster:Bootstrap:StableMargin"] = "00:00:01",
        ["Connect:Cluster:Bootstrap:ProbeInterval"] = "00:00:00.500",
    };

    private static Dictionary<string, string?> ConfigDiscovery(int[] managementPorts, int self)
    {
        var settings = BootstrapSettings("config", managementPorts[self]);
        for (var i = 0; i < managementPorts.Length; i++)
        {
            settings[$"Connect:Cluster:Bootstrap:ContactPoints:{i}"] = $"127.0.0.1:{managementPorts[i]}";
        }
        return settings;
    }

    private static Akka.Cluster.Cluster ClusterOf(TestNode node) => Akka.Cluster.Cluster.Get(node.Services.GetRequiredService<ActorSystem>());

    /// <summary>Every node sees the same members, all Up, and the same leader: one cluster, no island.</summary>
    private static async Task AssertOneClusterAsync(IReadOnlyList<TestNode> nodes)
    {
        var addresses = nodes.Select(n => ClusterOf(n).SelfAddress).OrderBy(a => a.ToString()).ToList();
        await Eventually.UntilAsync(() => nodes.All(n =>
        {
            var state = ClusterOf(n).State;
            return state.Members.Count == nodes.Count && state.Members.All(m => m.Status == MemberStatus.Up) && state.Unreachable.Count == 0
                && state.Members.Select(m => m.Address).OrderBy(a => a.ToString()).SequenceEqual(addresses);
        }), $"{nodes.Count} nodes all Up in one cluster", FormBound);
        var leaders = nodes.Select(n => ClusterOf(n).State.Leader).Distinct().ToList();
        Assert.Single(leaders);
        Assert.Contains(Assert.Single(leaders), addresses);
    }

    private static async Task<TestNode[]> StartAllAsync(Func<int, Dictionary<string, string?>> settings, int count) =>
        // All at once, as a Deployment starts its pods: no node is special, none is told a seed.
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => TestNode.StartAsync(settings: settings(i), waitUp: false)));

    [Fact]
    public async Task Three_nodes_form_one_cluster_through_config_discovery_without_seed_nodes()
    {
        var ports = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).ToArray();
        var nodes = await StartAllAsync(i => ConfigDiscovery(ports, i), 3);
        try
        {
            Assert.All(nodes, n => Assert.Empty(n.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Connect.Host.Configuration.ConnectSettings>>().Value.Cluster.SeedNodes));
            await AssertOneClusterAsync(nodes);

            // What the management endpoint shows whoever reaches it: the seed nodes (bootstrap's one route), nothing else.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var seeds = await http.GetStringAsync($"http://127.0.0.1:{ports[0]}/bootstrap/seed-nodes");
            output.WriteLine(seeds);
            using var json = JsonDocument.Parse(seeds);
            Assert.Equal(3, json.RootElement.GetProperty("Nodes").GetArrayLength());
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{ports[0]}/cluster/members")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{ports[0]}/remote-address")).StatusCode);
        }
        finally
        {
            await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task Three_nodes_form_one_cluster_through_Kubernetes_API_discovery_read_from_a_fake_API_server()
    {
        await using var api = await FakeKubernetesApi.StartAsync();
        var ports = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).ToArray();
        var labels = new Dictionary<string, string> { ["app.kubernetes.io/name"] = "connect" };
        for (var i = 0; i < 3; i++)
        {
            api.SetPod($"connect-{i}", "127.0.0.1", ports[i], labels);
        }
        // A pod of another app in the same namespace, with a management port too: the label selector must leave it out.
        var stranger = FreePorts.Next();
        api.SetPod("other-app-0", "127.0.0.1", stranger, new Dictionary<string, string> { ["app.kubernetes.io/name"] = "other" });

        var secrets = Directory.CreateTempSubdirectory("connect-k8s-");
        var token = "fake-service-account-token-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(secrets.FullName, "token"), token);
        // The client reads the API server's address from two environment variables whose names are settings: unique
        // names here, so no other test (or a real KUBERNETES_SERVICE_HOST) is involved.
        var hostVariable = "CONNECT_TEST_K8S_HOST_" + Guid.NewGuid().ToString("N");
        var portVariable = "CONNECT_TEST_K8S_PORT_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(hostVariable, "http://127.0.0.1");
        Environment.SetEnvironmentVariable(portVariable, api.Port.ToString());
        Dictionary<string, string?> Settings(int i)
        {
            var settings = BootstrapSettings("kubernetes-api", ports[i]);
            settings["Connect:Cluster:Bootstrap:ManagementHost"] = "127.0.0.1"; // the pod IP, as the manifest sets it
            settings["Connect:Cluster:Bootstrap:Namespace"] = FakeKubernetesApi.Namespace;
            settings["Connect:Cluster:Bootstrap:RequiredContactPoints"] = "3";
            settings["Connect:Cluster:Hocon"] = $"""
                akka.discovery.kubernetes-api.api-service-host-env-name = "{hostVariable}"
                akka.discovery.kubernetes-api.api-service-port-env-name = "{portVariable}"
                akka.discovery.kubernetes-api.api-token-path = "{Path.Combine(secrets.FullName, "token")}"
                akka.discovery.kubernetes-api.api-ca-path = "{Path.Combine(secrets.FullName, "ca.crt")}"
                """;
            return settings;
        }

        TestNode[] nodes = [];
        try
        {
            nodes = await StartAllAsync(Settings, 3);
            await AssertOneClusterAsync(nodes);
            foreach (var request in api.Requests.Take(3))
            {
                output.WriteLine($"{request.Path}{request.Query} ({request.Authorization})");
            }
            // The real client asked the API: the pods of our namespace with our label, with the service account's token.
            Assert.NotEmpty(api.Requests);
            Assert.All(api.Requests, r =>
            {
                Assert.Equal($"/api/v1/namespaces/{FakeKubernetesApi.Namespace}/pods", r.Path);
                Assert.Equal("?labelSelector=app.kubernetes.io/name=connect", Uri.UnescapeDataString(r.Query));
                Assert.Equal($"Bearer {token}", r.Authorization);
            });
            // The other app's pod (same namespace, a management port too) did not become a contact point or a member.
            Assert.All(nodes, n => Assert.Equal(3, ClusterOf(n).State.Members.Count));
        }
        finally
        {
            await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
            Environment.SetEnvironmentVariable(hostVariable, null);
            Environment.SetEnvironmentVariable(portVariable, null);
            secrets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_restarted_node_joins_the_existing_cluster_and_never_forms_an_island()
    {
        var ports = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).ToArray();
        var nodes = await StartAllAsync(i => ConfigDiscovery(ports, i), 3);
        try
        {
            await AssertOneClusterAsync(nodes);
            // Restart the node with the lowest contact point: the one bootstrap lets form a new cluster, so the one
            // that would form an island if it did not ask the others first.
            var lowest = Array.IndexOf(ports, ports.Min());
            var leader = ClusterOf(nodes[lowest]).State.Leader;
            output.WriteLine($"restarting node {lowest} (management port {ports[lowest]}); leader before: {leader}");
            var restartedBefore = ClusterOf(nodes[lowest]).SelfAddress;
            await nodes[lowest].DisposeAsync();
            var survivors = nodes.Where((_, i) => i != lowest).ToArray();
            await Eventually.UntilAsync(
                () => survivors.All(n => ClusterOf(n).State.Members.Count == 2 && ClusterOf(n).State.Members.All(m => m.Status == MemberStatus.Up)),
                "the two other nodes alone, Up, after the graceful stop", FormBound);

            // Back with the same settings (same contact points, same management port), as a restarted pod or VM. A new
            // process would find the port free; in this process the stopped node's management listener may still be
            // closing (seen once in CI: "address already in use"), so wait until the port can be bound.
            await Eventually.UntilAsync(() => PortIsFree(ports[lowest]), $"management port {ports[lowest]} released by the stopped node", FormBound);
            var restarted = await TestNode.StartAsync(settings: ConfigDiscovery(ports, lowest), waitUp: false);
            nodes[lowest] = restarted;
            var seenWhenUp = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var cluster = ClusterOf(restarted);
            cluster.RegisterOnMemberUp(() => seenWhenUp.TrySetResult(cluster.State.Members.Count));
            // An island would be Up at once with one member; a join is Up with the two survivors already in view.
            var membersWhenUp = await seenWhenUp.Task.WaitAsync(FormBound);
            Assert.True(membersWhenUp >= 3, $"the restarted node was Up with {membersWhenUp} member(s): it formed an island");
            Assert.NotEqual(restartedBefore, cluster.SelfAddress);
            await AssertOneClusterAsync(nodes);
        }
        finally
        {
            await Task.WhenAll(nodes.Select(async n =>
            {
                try
                {
                    await n.DisposeAsync();
                }
                catch (ObjectDisposedException)
                {
                }
            }));
        }
    }

    private static bool PortIsFree(int port)
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        try
        {
            probe.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
        finally
        {
            probe.Stop();
        }
    }
}
