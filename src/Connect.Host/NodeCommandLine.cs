using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Connect.Host.Configuration;

namespace Connect.Host;

/// <summary>
/// connect-node's command line before a node is built: <c>--help</c> and <c>--version</c> print and exit, an unknown
/// switch or a stray word is refused (exit 2) instead of being ignored, and a configured port that another process
/// holds ends in one line naming the setting (exit 1) instead of a socket stack trace. The switches themselves stay
/// configuration: they are handed to <see cref="ConnectNode.Build"/>, which maps them onto <c>Connect:*</c> keys.
/// </summary>
public static class NodeCommandLine
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    /// <summary>Parses <paramref name="args"/>; null means "start the node", a number is the exit code to return now.</summary>
    public static int? Handle(string[] args, TextWriter output, TextWriter error)
    {
        var root = BuildCommand();
        // Any configuration key may be set as --Section:Key=value or --Section:Key value (Microsoft.Extensions.Configuration's
        // command-line form); System.CommandLine does not know them, so they are set aside before parsing.
        var parse = root.Parse(WithoutConfigurationKeys(args));
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors)
            {
                error.WriteLine($"connect-node: {problem.Message}");
            }
            error.WriteLine("run 'connect-node --help' for the switches; any setting can also be given as --Connect:Section:Key=value");
            return Usage;
        }
        if (parse.Action is not null)
        {
            // --help or --version: System.CommandLine's own actions print and return 0.
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
        }
        return null;
    }

    /// <summary>
    /// Tries each configured, fixed port on the bind address before the node starts, so a taken port is reported by
    /// its setting (the listeners fail later inside Kestrel, Akka.Remote or the data channel, each with its own
    /// exception). Returns the message for the first taken port, or null. A race with another process remains; the
    /// caller still maps a bind failure at start-up with <see cref="DescribeBindFailure"/>.
    /// </summary>
    public static string? FindTakenPort(ConnectSettings settings)
    {
        if (!IPAddress.TryParse(settings.BindAddress, out var address))
        {
            return null;
        }
        foreach (var (setting, flag, port) in Ports(settings))
        {
            if (port == 0)
            {
                continue;
            }
            using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            // SO_REUSEADDR so that connections of a node that just stopped (TIME_WAIT) do not count as "in use";
            // on Linux it still refuses a port another socket listens on.
            probe.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                probe.Bind(new IPEndPoint(address, port));
                probe.Listen(1);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
            {
                return Taken(setting, flag, address, port, e.SocketErrorCode);
            }
        }
        return null;
    }

    /// <summary>A one-line message for a start-up failure that is a taken port, or null when it is something else.</summary>
    public static string? DescribeBindFailure(Exception failure, ConnectSettings settings)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is Microsoft.AspNetCore.Connections.AddressInUseException or SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse })
            {
                // Kestrel's message names the address ("Failed to bind to address http://127.0.0.1:7080"): find the setting by its port.
                var text = failure.Message + " " + e.Message;
                foreach (var (setting, flag, port) in Ports(settings))
                {
                    if (port != 0 && text.Contains($":{port}", StringComparison.Ordinal))
                    {
                        return Taken(setting, flag, IPAddress.TryParse(settings.BindAddress, out var a) ? a : IPAddress.Loopback, port, SocketError.AddressAlreadyInUse);
                    }
                }
                return $"connect-node: a port is already in use ({e.Message}); pick others with --tunnel-port, --proxy-port, --admin-port, --cluster-port, --data-port (0 = any free port)";
            }
        }
        return null;
    }

    private static string Taken(string setting, string flag, IPAddress address, int port, SocketError why) =>
        why == SocketError.AccessDenied
            ? $"connect-node: {setting} = {port}: this process may not bind {address}:{port} (ports below 1024 need privileges); pick another with {flag} N"
            : $"connect-node: {setting} = {port}: {address}:{port} is already in use by another process; stop it or pick another port with {flag} N (0 = any free port)";

    private static IEnumerable<(string Setting, string Flag, int Port)> Ports(ConnectSettings settings) =>
    [
        ("Connect:Tunnel:Port", "--tunnel-port", settings.Tunnel.Port),
        ("Connect:Proxy:Port", "--proxy-port", settings.Proxy.Port),
        ("Connect:Admin:Port", "--admin-port", settings.Admin.Port),
        ("Connect:Cluster:Port", "--cluster-port", settings.Cluster.Port),
        ("Connect:Cluster:DataPort", "--data-port", settings.Cluster.DataPort),
        .. settings.Cluster.Bootstrap.Enabled ? [("Connect:Cluster:Bootstrap:ManagementPort", "--Connect:Cluster:Bootstrap:ManagementPort", settings.Cluster.Bootstrap.ManagementPort)] : Array.Empty<(string, string, int)>(),
    ];

    private static string[] WithoutConfigurationKeys(string[] args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            var name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..].Split('=', 2)[0] : null;
            if (name is not null && name.Contains(':') && !ConnectNode.SwitchMappings.ContainsKey("--" + name.Split(':', 2)[0]))
            {
                if (!arg.Contains('=') && i + 1 < args.Length)
                {
                    i++; // --Section:Key value
                }
                continue;
            }
            kept.Add(arg);
        }
        return kept.ToArray();
    }

    private static RootCommand BuildCommand()
    {
        var root = new RootCommand(
            "connect-node: one node of a Connect cluster (tunnel endpoint, HTTP proxy, admin API).\n" +
            "Settings come from appsettings.json, then --config FILE, then environment variables (Connect__Proxy__Port=8080), then these switches.\n" +
            "Any setting can also be given as --Connect:Section:Key=value (e.g. --Connect:Drain:ProxyGrace=00:00:10).\n" +
            "  connect-node hash-token    read a token on stdin, print its SHA-256 for Connect:Auth:Tokens:N:Sha256\n" +
            "Exit codes: 0 stopped cleanly, 1 failed (e.g. a port in use), 2 bad command line or configuration.");
        root.Options.Add(new Option<string>("--config") { Description = "A JSON file layered over appsettings.json (e.g. cluster-config/local/node2.json)", HelpName = "FILE" });
        root.Options.Add(new Option<string[]>("--seed") { Description = "Connect:Cluster:SeedNodes: a seed node address, repeatable (default: none, the node forms its own cluster)", HelpName = "ADDR" });
        foreach (var (flag, setting) in ConnectNode.SwitchMappings)
        {
            root.Options.Add(new Option<string>(flag) { Description = setting, HelpName = "VALUE" });
        }
        return root;
    }
}
