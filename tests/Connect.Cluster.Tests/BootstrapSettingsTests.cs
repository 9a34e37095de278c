using Connect.Host.Bootstrap;
using Connect.Host.Configuration;

namespace Connect.Cluster.Tests;

/// <summary>
/// What start-up refuses in <c>Connect:Cluster:Bootstrap</c>, one rule per row: above all a management endpoint
/// anywhere but loopback or the private cluster bind (it tells whoever reaches it the cluster's members).
/// </summary>
public sealed class BootstrapSettingsTests
{
    private static ConnectSettings Settings(string? discovery, string? managementBind = null, string? clusterBind = "10.0.1.11", string? publicBind = "0.0.0.0", string[]? contacts = null, string[]? seeds = null, int port = 8558)
    {
        var settings = new ConnectSettings { PublicBind = publicBind };
        settings.Cluster.Bind = clusterBind;
        settings.Cluster.SeedNodes = [.. seeds ?? []];
        settings.Cluster.Bootstrap.Discovery = discovery;
        settings.Cluster.Bootstrap.ManagementBind = managementBind;
        settings.Cluster.Bootstrap.ManagementPort = port;
        settings.Cluster.Bootstrap.ContactPoints = [.. contacts ?? ["10.0.1.11:8558", "10.0.1.12:8558"]];
        return settings;
    }

    public static TheoryData<string, ConnectSettings, string?> Rows => new()
    {
        { "off: nothing to check", Settings(null, managementBind: "0.0.0.0"), null },
        { "config, default bind (the cluster bind)", Settings("config"), null },
        { "kubernetes, default bind", Settings("kubernetes-api"), null },
        { "loopback bind", Settings("config", managementBind: "127.0.0.1"), null },
        { "the cluster bind named", Settings("config", managementBind: "10.0.1.11"), null },
        { "every interface while the cluster binds one", Settings("config", managementBind: "0.0.0.0"), "must stay on the private side" },
        { "the public bind", Settings("config", managementBind: "192.0.2.10", publicBind: "192.0.2.10"), "must stay on the private side" },
        { "another private address", Settings("config", managementBind: "10.0.1.99"), "must stay on the private side" },
        { "not an address", Settings("config", managementBind: "cluster.local"), "is not an IP address" },
        { "unknown discovery", Settings("dns"), "is not one of" },
        { "seeds and bootstrap", Settings("config", seeds: ["akka.tcp://connect@10.0.1.11:7090"]), "use one" },
        { "config without contact points", Settings("config", contacts: []), "ContactPoints is empty" },
        { "a contact point without a port", Settings("config", contacts: ["10.0.1.11"]), "is not host:port" },
        { "a contact point with port 0", Settings("config", contacts: ["10.0.1.11:0"]), "is not host:port" },
        { "management port 0", Settings("config", port: 0), "outside 1..65535" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Bootstrap_settings_are_checked_at_start_up(string row, ConnectSettings settings, string? problem)
    {
        var found = BootstrapConfiguration.Problem(settings);
        if (problem is null)
        {
            Assert.True(found is null, $"{row}: unexpected problem '{found}'");
        }
        else
        {
            Assert.True(found is not null && found.Contains(problem, StringComparison.Ordinal), $"{row}: expected '{problem}', got '{found}'");
        }
    }
}
