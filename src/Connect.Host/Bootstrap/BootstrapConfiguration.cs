using System.Net;
using Akka.Discovery.Config.Hosting;
using Akka.Hosting;
using Akka.Management.Cluster.Bootstrap;
using Connect.Host.Configuration;

namespace Connect.Host.Bootstrap;

/// <summary>
/// Cluster bootstrap for a node (<see cref="BootstrapSettings"/>): Akka.Discovery (config or Kubernetes API) finds the
/// peers, Akka.Management's ClusterBootstrap probes them and joins or forms the cluster, and <see cref="ManagementEndpoint"/>
/// answers the peers' probes on a private address.
/// </summary>
public static class BootstrapConfiguration
{
    /// <summary>Why the bootstrap settings cannot work, or null. Checked at start-up so a mistake stops the node with its setting named.</summary>
    public static string? Problem(ConnectSettings settings)
    {
        var bootstrap = settings.Cluster.Bootstrap;
        if (!bootstrap.Enabled)
        {
            return null;
        }
        if (bootstrap.Discovery is not (BootstrapSettings.ConfigDiscovery or BootstrapSettings.KubernetesDiscovery))
        {
            return $"Connect:Cluster:Bootstrap:Discovery '{bootstrap.Discovery}' is not one of '{BootstrapSettings.ConfigDiscovery}', '{BootstrapSettings.KubernetesDiscovery}' (or empty for static seeds)";
        }
        if (settings.Cluster.SeedNodes.Count > 0)
        {
            return "both Connect:Cluster:SeedNodes and Connect:Cluster:Bootstrap:Discovery are set; use one (bootstrap finds the seeds itself)";
        }
        if (bootstrap.ManagementPort is < 1 or > 65535)
        {
            return $"Connect:Cluster:Bootstrap:ManagementPort {bootstrap.ManagementPort} is outside 1..65535 (peers find this node's endpoint at a fixed port)";
        }
        if (!IPAddress.TryParse(ManagementBindAddress(settings), out var bind))
        {
            return $"Connect:Cluster:Bootstrap:ManagementBind '{ManagementBindAddress(settings)}' is not an IP address";
        }
        // The endpoint answers anyone who reaches it with the cluster's member addresses (GET /bootstrap/seed-nodes):
        // loopback or the private cluster interface only, like Akka.Remote itself; never the public side.
        if (!IPAddress.IsLoopback(bind) && !bind.Equals(IPAddress.Parse(settings.ClusterBindAddress)))
        {
            return $"Connect:Cluster:Bootstrap:ManagementBind {bind} is neither loopback nor the cluster bind address ({settings.ClusterBindAddress}); the management endpoint reveals the cluster's members and must stay on the private side";
        }
        if (bootstrap.Discovery == BootstrapSettings.ConfigDiscovery)
        {
            if (bootstrap.ContactPoints.Count == 0)
            {
                return "Connect:Cluster:Bootstrap:Discovery is 'config' but Connect:Cluster:Bootstrap:ContactPoints is empty; list every node's management endpoint as host:port";
            }
            foreach (var contact in bootstrap.ContactPoints)
            {
                var colon = contact.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(contact[(colon + 1)..], out var port) || port is < 1 or > 65535)
                {
                    return $"Connect:Cluster:Bootstrap:ContactPoints entry '{contact}' is not host:port";
                }
            }
        }
        if (bootstrap.RequiredContactPoints is < 1)
        {
            return $"Connect:Cluster:Bootstrap:RequiredContactPoints {bootstrap.RequiredContactPoints} must be at least 1";
        }
        return null;
    }

    /// <summary>The management endpoint's bind address: <see cref="BootstrapSettings.ManagementBind"/>, else the cluster bind.</summary>
    public static string ManagementBindAddress(ConnectSettings settings) =>
        string.IsNullOrWhiteSpace(settings.Cluster.Bootstrap.ManagementBind) ? settings.ClusterBindAddress : settings.Cluster.Bootstrap.ManagementBind;

    /// <summary>The host peers know this node's management endpoint by.</summary>
    public static string ManagementHost(ConnectSettings settings) =>
        string.IsNullOrWhiteSpace(settings.Cluster.Bootstrap.ManagementHost) ? settings.ClusterAdvertisedHost : settings.Cluster.Bootstrap.ManagementHost;

    /// <summary>ClusterBootstrap (discovery, probing, the join decision) and the discovery method; the endpoint is <see cref="ManagementEndpoint"/>.</summary>
    public static AkkaConfigurationBuilder WithConnectBootstrap(this AkkaConfigurationBuilder builder, ConnectSettings settings)
    {
        var bootstrap = settings.Cluster.Bootstrap;
        var required = bootstrap.RequiredContactPoints
            ?? (bootstrap.Discovery == BootstrapSettings.ConfigDiscovery ? bootstrap.ContactPoints.Count : 2);
        // Not auto-started: ManagementEndpoint starts it once its listener is bound and the self contact point is known.
        builder.WithClusterBootstrap(options =>
        {
            options.NewClusterEnabled = bootstrap.NewClusterEnabled;
            options.ContactPointDiscovery.ServiceName = bootstrap.ServiceName;
            options.ContactPointDiscovery.DiscoveryMethod = "akka.discovery";
            options.ContactPointDiscovery.RequiredContactPointsNr = required;
            options.ContactPointDiscovery.StableMargin = bootstrap.StableMargin;
            options.ContactPointDiscovery.Interval = bootstrap.ProbeInterval;
            options.ContactPoint.ProbeInterval = bootstrap.ProbeInterval;
            if (bootstrap.Discovery == BootstrapSettings.KubernetesDiscovery)
            {
                options.ContactPointDiscovery.PortName = bootstrap.PortName;
            }
            else
            {
                // Config discovery returns the management endpoints themselves: no port name, no filtering on a fallback port.
                options.ContactPoint.FilterOnFallbackPort = false;
            }
        }, autoStart: false);
        if (bootstrap.Discovery == BootstrapSettings.KubernetesDiscovery)
        {
            // Connect's own plugin at Akka's path (see KubernetesPodDiscovery for why not Akka.Discovery.KubernetesApi).
            // The label selector and namespace are typed settings; the rest keeps Akka's names and defaults.
            var kubernetes = $"{KubernetesPodDiscovery.ConfigPath}.pod-label-selector = {Quote(bootstrap.PodLabelSelector)}\n"
                + (string.IsNullOrWhiteSpace(bootstrap.Namespace) ? "" : $"{KubernetesPodDiscovery.ConfigPath}.pod-namespace = {Quote(bootstrap.Namespace)}\n")
                + "akka.discovery.method = kubernetes-api\n";
            builder.AddHocon(kubernetes, HoconAddMode.Append);
            builder.AddHocon(KubernetesPodDiscovery.DefaultConfig, HoconAddMode.Append);
        }
        else
        {
            builder.WithConfigDiscovery(new ConfigServiceDiscoveryOptions
            {
                Services = [new Service { Name = bootstrap.ServiceName, Endpoints = bootstrap.ContactPoints.ToArray() }],
            });
        }
        return builder;
    }

    /// <summary>A HOCON string literal (JSON escaping is valid HOCON).</summary>
    private static string Quote(string value) => System.Text.Json.JsonSerializer.Serialize(value);
}
