using Connect.Tunnel.Targets;
namespace Connect.Client;

/// <summary>Parses connect-client's command line; errors name the argument and say what was expected.</summary>
public static class AgentCommandLine
{
    public const string TokenVariable = "CONNECT_TOKEN";

    /// <summary>A hosts-format file the agent's resolver consults before the system's (a test and operations hook).</summary>
    public const string HostsFileVariable = "CONNECT_CLIENT_HOSTS_FILE";

    public const string Usage = """
        connect-client: the Connect agent. It dials out to a Connect cluster and carries the cloud's proxy
        requests to targets that this machine can reach.

        Usage:
          connect-client --server URL [--server URL ...] --session NAME [--token TOKEN] [options]

        Options:
          --server URL        a node's tunnel endpoint, e.g. ws://127.0.0.1:7070 (repeat for several nodes)
          --session NAME      the session name the cloud uses in Proxy-Authorization (letters, digits, . _ -)
          --token TOKEN       the agent token (or set CONNECT_TOKEN; prefer the variable: arguments show in ps)
          --allow PATTERNS    destinations the cloud may reach, comma-separated or repeated:
                              host:port; host is a name (app.internal), *.suffix (whole labels), an IPv4
                              address, octet wildcard or CIDR (10.0.0.1, 10.9.8.*, 10.0.0.0/8), IPv6 in brackets
                              ([::1], [fd00::/8]) or *; port is N, N-M or *. '*' alone allows everything.
                              A name passes an address rule only if every address it resolves to here does.
                              Default: localhost:*, 127.0.0.1:*, [::1]:* (this machine only)
          --links N           hold N links to different nodes (default 1; 2 survives a node crash without a gap)
          --ca-file FILE      trust this PEM CA for wss:// servers instead of the system roots
          --insecure          accept any server certificate (development only)
          --status-interval S print link status every S seconds (default 10, 0 = only on change of state)
          -h, --help          show this help

        Environment: CONNECT_TOKEN (the token), CONNECT_CLIENT_HOSTS_FILE (a hosts-format file consulted
        before the system resolver, for tests and pinning names).

        Ctrl+C stops gracefully: no new streams, open streams finish (up to 30 s), then the links close.
        """;

    public static AgentOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        var servers = new List<Uri>();
        var allow = new List<string>();
        string? session = null;
        string? token = null;
        var links = 1;
        var insecure = false;
        string? caFile = null;
        var statusInterval = TimeSpan.FromSeconds(10);

        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new ArgumentException($"{arg} needs a value");
                }
                return args[++i];
            }
            switch (arg)
            {
                case "--server":
                    servers.Add(ParseServer(Value()));
                    break;
                case "--session":
                    session = Value();
                    break;
                case "--token":
                    token = Value();
                    break;
                case "--allow":
                    allow.Add(Value());
                    break;
                case "--links":
                    var linksText = Value();
                    if (!int.TryParse(linksText, out links) || links is < 1 or > 8)
                    {
                        throw new ArgumentException($"--links must be 1..8, got '{linksText}'");
                    }
                    break;
                case "--ca-file":
                    caFile = Value();
                    if (!File.Exists(caFile))
                    {
                        throw new ArgumentException($"--ca-file '{caFile}' does not exist");
                    }
                    break;
                case "--insecure":
                    insecure = true;
                    break;
                case "--status-interval":
                    var seconds = Value();
                    if (!double.TryParse(seconds, System.Globalization.CultureInfo.InvariantCulture, out var s) || s < 0)
                    {
                        throw new ArgumentException($"--status-interval must be a number of seconds, got '{seconds}'");
                    }
                    statusInterval = TimeSpan.FromSeconds(s);
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{arg}' (see --help)");
            }
        }

        token ??= environment(TokenVariable);
        if (servers.Count == 0)
        {
            throw new ArgumentException("at least one --server is required, e.g. --server ws://127.0.0.1:7070");
        }
        if (string.IsNullOrWhiteSpace(session))
        {
            throw new ArgumentException("--session is required");
        }
        if (!SessionNames.IsValid(session))
        {
            throw new ArgumentException($"--session '{session}' is not a valid name: {SessionNames.Rule}");
        }
        if (string.IsNullOrEmpty(token))
        {
            throw new ArgumentException($"a token is required: --token TOKEN or the {TokenVariable} environment variable");
        }
        AllowList allowList;
        try
        {
            allowList = allow.Count == 0 ? AllowList.Default : AllowList.Parse(allow);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message);
        }
        var hostsFile = environment(HostsFileVariable);
        IHostResolver resolver = string.IsNullOrEmpty(hostsFile)
            ? SystemHostResolver.Instance
            : HostsFileResolver.Load(hostsFile, SystemHostResolver.Instance);
        return new AgentOptions
        {
            Servers = servers,
            Session = session,
            Token = token,
            Allow = allowList,
            Resolver = resolver,
            Links = links,
            InsecureSkipVerify = insecure,
            CaFile = caFile,
            StatusInterval = statusInterval,
        };
    }

    /// <summary>Accepts ws://, wss://, http:// and https:// (mapped to ws/wss); the tunnel path is added when absent.</summary>
    public static Uri ParseServer(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"--server '{text}' is not an absolute URL such as ws://127.0.0.1:7070");
        }
        var scheme = uri.Scheme switch
        {
            "ws" or "http" => "ws",
            "wss" or "https" => "wss",
            _ => throw new ArgumentException($"--server '{text}' must use ws://, wss://, http:// or https://"),
        };
        var builder = new UriBuilder(uri) { Scheme = scheme, Port = uri.Port };
        if (builder.Path is "" or "/")
        {
            builder.Path = "/v1/tunnel";
        }
        return builder.Uri;
    }
}
