using System.Net;
using System.Runtime.CompilerServices;
using Connect.Admin.Tests.Support;
using Connect.Host.Configuration;
using YamlDotNet.RepresentationModel;

namespace Connect.Admin.Tests;

/// <summary>
/// deploy/kubernetes and deploy/systemd agree with the node: probe paths it serves, a stop grace that covers the
/// drain, container ports equal to the configured ports, Services that point at ports the container has.
/// No schema validator is installable here, so these invariants are checked on the parsed YAML.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DeployManifestTests(ClusterFixture cluster)
{
    /// <summary>The host's shutdown allowance beyond deadline and proxy grace (ConnectNode: HostOptions.ShutdownTimeout).</summary>
    private static readonly TimeSpan LeaveAllowance = TimeSpan.FromSeconds(45);

    private static string Repo([CallerFilePath] string here = "") => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    private static List<YamlMappingNode> Documents(string relative)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Repo(), relative));
        yaml.Load(reader);
        return yaml.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
    }

    private static YamlNode At(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            var map = Assert.IsType<YamlMappingNode>(node);
            Assert.True(map.Children.TryGetValue(new YamlScalarNode(key), out var next), $"no '{key}' under {node.Start}");
            node = next!;
        }
        return node;
    }

    private static string Text(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> docs, string kind, string? name = null) =>
        Assert.Single(docs, d => Text(d, "kind") == kind && (name is null || Text(d, "metadata", "name") == name));

    private static YamlMappingNode Container(List<YamlMappingNode> docs) =>
        (YamlMappingNode)Assert.Single(((YamlSequenceNode)At(Kind(docs, "StatefulSet"), "spec", "template", "spec", "containers")).Children);

    private static Dictionary<string, string> Env(YamlMappingNode container) =>
        ((YamlSequenceNode)At(container, "env")).Children.Cast<YamlMappingNode>()
            .Where(e => ((YamlMappingNode)e).Children.ContainsKey(new YamlScalarNode("value")))
            .ToDictionary(e => Text(e, "name"), e => Text(e, "value"));

    private static Dictionary<string, int> ContainerPorts(YamlMappingNode container) =>
        ((YamlSequenceNode)At(container, "ports")).Children.Cast<YamlMappingNode>().ToDictionary(p => Text(p, "name"), p => int.Parse(Text(p, "containerPort")));

    [Fact]
    public async Task Kubernetes_probes_use_paths_the_node_serves()
    {
        var container = Container(Documents("deploy/kubernetes/connect.yaml"));
        var ports = ContainerPorts(container);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{cluster.Node1.AdminPort}") };
        foreach (var probe in new[] { "readinessProbe", "livenessProbe", "startupProbe" })
        {
            var path = Text(container, probe, "httpGet", "path");
            Assert.Equal("admin", Text(container, probe, "httpGet", "port"));
            Assert.Equal(9110, ports["admin"]);
            var response = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // a ready, live node answers 200 on each probe path
        }
        Assert.Equal("/readyz", Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/healthz", Text(container, "livenessProbe", "httpGet", "path"));
    }

    [Fact]
    public void Kubernetes_grace_covers_the_drain_and_the_preStop_hook_drains_and_waits()
    {
        var docs = Documents("deploy/kubernetes/connect.yaml");
        var container = Container(docs);
        var env = Env(container);
        var deadline = TimeSpan.Parse(env["Connect__Drain__Deadline"]);
        var proxyGrace = TimeSpan.Parse(env["Connect__Drain__ProxyGrace"]);
        var grace = TimeSpan.FromSeconds(int.Parse(Text(Kind(docs, "StatefulSet"), "spec", "template", "spec", "terminationGracePeriodSeconds")));
        Assert.True(grace >= deadline + proxyGrace + LeaveAllowance, $"terminationGracePeriodSeconds {grace.TotalSeconds} < drain deadline {deadline.TotalSeconds} + proxy grace {proxyGrace.TotalSeconds} + {LeaveAllowance.TotalSeconds}");

        var hook = string.Join(' ', ((YamlSequenceNode)At(container, "lifecycle", "preStop", "exec", "command")).Children.Select(c => ((YamlScalarNode)c).Value));
        Assert.Contains("connect drain", hook);
        Assert.Contains("connect ready --wait", hook);
        var wait = int.Parse(hook[(hook.LastIndexOf("--wait", StringComparison.Ordinal) + "--wait".Length)..].Trim().Split(' ')[0]);
        Assert.True(TimeSpan.FromSeconds(wait) >= deadline, "the preStop wait must cover the drain deadline");
        Assert.True(TimeSpan.FromSeconds(wait) < grace, "the preStop wait must end inside the grace");
        Assert.Equal("1", Text(Kind(docs, "PodDisruptionBudget"), "spec", "maxUnavailable"));
    }

    [Fact]
    public void Kubernetes_ports_match_the_configuration_and_every_Service_targets_a_container_port()
    {
        var docs = Documents("deploy/kubernetes/connect.yaml");
        var container = Container(docs);
        var env = Env(container);
        var ports = ContainerPorts(container);
        Assert.Equal(int.Parse(env["Connect__Tunnel__Port"]), ports["tunnel"]);
        Assert.Equal(int.Parse(env["Connect__Proxy__Port"]), ports["proxy"]);
        Assert.Equal(int.Parse(env["Connect__Cluster__Port"]), ports["remoting"]);
        Assert.Equal(int.Parse(env["Connect__Cluster__DataPort"]), ports["data"]);
        Assert.Equal(int.Parse(env["Connect__Admin__Port"]), ports["admin"]);
        Assert.Equal(int.Parse(env["Connect__Cluster__Bootstrap__ManagementPort"]), ports["management"]);

        foreach (var service in docs.Where(d => Text(d, "kind") == "Service"))
        {
            foreach (var port in ((YamlSequenceNode)At(service, "spec", "ports")).Children.Cast<YamlMappingNode>())
            {
                Assert.Contains(Text(port, "targetPort"), ports.Keys);
            }
        }
        Assert.Equal("None", Text(Kind(docs, "Service", "connect-cluster"), "spec", "clusterIP"));
        Assert.Equal("connect-cluster", Text(Kind(docs, "StatefulSet"), "spec", "serviceName"));
        var rules = (YamlSequenceNode)At(Kind(docs, "Role"), "rules");
        Assert.Contains(rules.Children, r => At(r, "resources").ToString().Contains("pods") && At(r, "verbs").ToString().Contains("list"));
        foreach (var secret in new[] { "connect-secrets", "connect-tunnel-tls", "connect-cluster-tls" })
        {
            Kind(Documents("deploy/kubernetes/secrets.example.yaml"), "Secret", secret);
        }
    }

    [Fact]
    public void Kubernetes_pods_find_each_other_through_bootstrap_with_the_API_and_the_RBAC_it_needs()
    {
        var docs = Documents("deploy/kubernetes/connect.yaml");
        var statefulSet = Kind(docs, "StatefulSet");
        var container = Container(docs);
        var env = Env(container);
        var ports = ContainerPorts(container);
        var defaults = new BootstrapSettings();

        // Bootstrap, not seeds: no seed list to go stale, no pod that must be up first.
        Assert.Equal(BootstrapSettings.KubernetesDiscovery, env["Connect__Cluster__Bootstrap__Discovery"]);
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("Connect__Cluster__SeedNodes", StringComparison.Ordinal));
        // The peers' management port is found by its container port name, and probed at the pod IP the pod advertises.
        Assert.True(ports.ContainsKey(defaults.PortName), $"no container port named '{defaults.PortName}' (Connect:Cluster:Bootstrap:PortName)");
        Assert.Equal(defaults.ManagementPort, ports[defaults.PortName]);
        Assert.Equal("$(POD_IP)", env["Connect__Cluster__Bootstrap__ManagementHost"]);
        var podIp = ((YamlSequenceNode)At(container, "env")).Children.Cast<YamlMappingNode>().Single(e => Text(e, "name") == "POD_IP");
        Assert.Equal("status.podIP", Text(podIp, "valueFrom", "fieldRef", "fieldPath"));
        // A partial start (fewer pods than replicas) must not form a cluster of its own.
        Assert.Equal(Text(statefulSet, "spec", "replicas"), env["Connect__Cluster__Bootstrap__RequiredContactPoints"]);
        // The label selector (default app.kubernetes.io/name={0} with the service name) selects these very pods.
        var selector = string.Format(System.Globalization.CultureInfo.InvariantCulture, defaults.PodLabelSelector, defaults.ServiceName).Split('=');
        Assert.Equal(selector[1], Text(statefulSet, "spec", "template", "metadata", "labels", selector[0]));
        // The headless Service carries the management port; the NetworkPolicy lets only Connect pods reach it.
        Assert.Contains(((YamlSequenceNode)At(Kind(docs, "Service", "connect-cluster"), "spec", "ports")).Children, p => Text(p, "targetPort") == "management");
        var policy = Kind(docs, "NetworkPolicy");
        var privateRule = ((YamlSequenceNode)At(policy, "spec", "ingress")).Children.Single(r => ((YamlMappingNode)r).Children.ContainsKey(new YamlScalarNode("from")));
        Assert.Equal(["data", "management", "remoting"], ((YamlSequenceNode)At(privateRule, "ports")).Children.Select(p => Text(p, "port")).Order().ToArray());
        // RBAC: the pods run as the ServiceAccount the RoleBinding names, and the Role lets it list pods.
        var account = Text(statefulSet, "spec", "template", "spec", "serviceAccountName");
        Kind(docs, "ServiceAccount", account);
        var binding = Kind(docs, "RoleBinding");
        Assert.Contains(((YamlSequenceNode)At(binding, "subjects")).Children, s => Text(s, "kind") == "ServiceAccount" && Text(s, "name") == account);
        Assert.Equal(Text(Kind(docs, "Role"), "metadata", "name"), Text(binding, "roleRef", "name"));
    }

    [Fact]
    public void Systemd_stop_timeout_covers_the_drain_with_the_default_settings()
    {
        var unit = File.ReadAllLines(Path.Combine(Repo(), "deploy/systemd/connect-node.service"));
        var timeout = TimeSpan.FromSeconds(int.Parse(Assert.Single(unit, l => l.StartsWith("TimeoutStopSec=", StringComparison.Ordinal))["TimeoutStopSec=".Length..]));
        var defaults = new DrainSettings();
        Assert.True(timeout >= defaults.Deadline + defaults.ProxyGrace + LeaveAllowance, $"TimeoutStopSec {timeout.TotalSeconds} is shorter than the drain and leave");
        Assert.Contains(unit, l => l.StartsWith("ExecStop=", StringComparison.Ordinal) && l.Contains("connect drain"));
        Assert.Contains(unit, l => l.StartsWith("ExecStop=", StringComparison.Ordinal) && l.Contains("connect ready --wait"));
    }
}
