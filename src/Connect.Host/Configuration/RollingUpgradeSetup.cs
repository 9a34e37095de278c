using System.Reflection;
using Akka.Hosting;

namespace Connect.Host.Configuration;

/// <summary>
/// Tells Akka which build each node runs, so sharding knows when a rolling upgrade is under way: while members
/// report different <c>akka.cluster.app-version</c>s the allocation strategy does not rebalance shards (a shard moved
/// to an old node would only move again when that node is replaced), and new shards go to the newest version.
/// </summary>
public static class RollingUpgradeSetup
{
    /// <summary>
    /// This build's version as Akka's app-version: the assembly's informational version (<c>1.0.0+&lt;commit&gt;</c>,
    /// the SDK appends the commit) with the build metadata as a qualifier (<c>1.0.0-&lt;commit&gt;</c>), so two builds of
    /// the same version number still count as different versions during an upgrade.
    /// </summary>
    public static string AppVersion(Assembly assembly)
    {
        var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString(3)
            ?? "0.0.0";
        // HOCON-safe and Akka-parsable: digits, letters, '.', '-' only.
        var cleaned = new string(version.Replace('+', '-').Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-').ToArray());
        return cleaned.Length == 0 ? "0.0.0" : cleaned;
    }

    /// <summary>
    /// Sets the node's app-version; an operator's <c>Connect:Cluster:Hocon</c>, added later, can still override it.
    /// (Akka.NET 1.5.73's default least-shard allocation strategy already skips rebalancing while members report
    /// different versions: RollingUpgradeTests shows it.)
    /// </summary>
    public static AkkaConfigurationBuilder WithAppVersion(this AkkaConfigurationBuilder builder, string appVersion) =>
        builder.AddHocon($"akka.cluster.app-version = \"{appVersion}\"", HoconAddMode.Prepend);
}
