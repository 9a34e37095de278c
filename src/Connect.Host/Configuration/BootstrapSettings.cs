namespace Connect.Host.Configuration;

/// <summary>
/// Cluster bootstrap (<c>Connect:Cluster:Bootstrap</c>): instead of static seeds, a node finds its peers through
/// Akka.Discovery (a fixed list for local runs and VMs, or the Kubernetes API), asks each peer's Akka.Management
/// endpoint whether a cluster exists, and joins it; only when no peer knows a cluster, and the set of peers has been
/// stable, does the peer with the lowest address form a new one. Off (empty <see cref="Discovery"/>): static seeds.
/// </summary>
public sealed class BootstrapSettings
{
    /// <summary>Discovery through a fixed list of management endpoints (<see cref="ContactPoints"/>).</summary>
    public const string ConfigDiscovery = "config";

    /// <summary>Discovery through the Kubernetes API: the pods matching <see cref="PodLabelSelector"/> in the namespace.</summary>
    public const string KubernetesDiscovery = "kubernetes-api";

    /// <summary>Akka.Management's own default port, the one its documentation and tools assume.</summary>
    public const int DefaultManagementPort = 8558;

    /// <summary><c>config</c>, <c>kubernetes-api</c>, or empty (bootstrap off: static <see cref="ClusterSettings.SeedNodes"/> or a cluster of one).</summary>
    public string? Discovery { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(Discovery);

    /// <summary>The service looked up in discovery; with Kubernetes it fills the label selector's <c>{0}</c>.</summary>
    public string ServiceName { get; set; } = "connect";

    /// <summary>
    /// How many peers discovery must return before a new cluster may be formed (joining an existing one needs only
    /// one). Unset: the number of <see cref="ContactPoints"/> for config discovery, 2 (Akka's default) for Kubernetes.
    /// Set it to the initial replica count: fewer lets a partial start form a cluster of its own.
    /// </summary>
    public int? RequiredContactPoints { get; set; }

    /// <summary>Config discovery: every node's management endpoint as <c>host:port</c> (the same list on every node, itself included).</summary>
    public List<string> ContactPoints { get; set; } = [];

    /// <summary>
    /// Where the management HTTP endpoint binds. Unset: the cluster bind address. Only loopback or the cluster bind
    /// are accepted: the endpoint tells anyone who reaches it the cluster's member addresses, so it stays private.
    /// </summary>
    public string? ManagementBind { get; set; }

    /// <summary>
    /// The host this node's management endpoint is known by, as discovery returns it (peers compare it to find
    /// themselves in the contact point list). Unset: the cluster's advertised host. On Kubernetes: the pod IP.
    /// </summary>
    public string? ManagementHost { get; set; }

    /// <summary>Port of the management HTTP endpoint (the same on every node).</summary>
    public int ManagementPort { get; set; } = DefaultManagementPort;

    /// <summary>
    /// Whether bootstrap may form a new cluster when no peer knows one. Once a cluster runs, false is the safer value:
    /// a node that cannot reach any member then keeps trying instead of ever forming a second cluster.
    /// </summary>
    public bool NewClusterEnabled { get; set; } = true;

    /// <summary>How long the discovered peers must stay the same before a new cluster is formed.</summary>
    public TimeSpan StableMargin { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often discovery is asked, and each peer's management endpoint probed, while bootstrapping.</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Kubernetes: the container port name of the management endpoint in the pod spec.</summary>
    public string PortName { get; set; } = "management";

    /// <summary>Kubernetes: the label selector for the peers' pods; <c>{0}</c> is <see cref="ServiceName"/>.</summary>
    public string PodLabelSelector { get; set; } = "app.kubernetes.io/name={0}";

    /// <summary>Kubernetes: the namespace to list pods in. Unset: the pod's own (read from the service account).</summary>
    public string? Namespace { get; set; }
}
