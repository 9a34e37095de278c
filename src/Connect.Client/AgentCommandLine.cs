using Connect.Tunnel.Targets;
namespace Connect.Client;

/// <summary>Parses connect-client's command line; errors name the argument and say what was expected.</summary>
public static class AgentCommandLine
{
    public const string TokenVariable = "CONNECT_TOKEN";

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
                              host:port with * wildcards and port ranges, e.g. 'localhost:*,*.internal:443'
                              or '*' for everything. Default: localhost:*, 127.0.0.1:*, [::1]:* (this machine only)
          --links N           hold N links to different nodes (default 1; 2 survives a node crash without a gap)
          --follow-suffix SUF a GOAWAY may also send the agent to hosts under this suffix (repeatable), e.g.
                              .connect.example.com; by default only to the hosts of the --server URLs, and never
                              from wss:// to ws://
          --ca-file FILE      trust this PEM CA for wss:// servers instead of the system roots
          --insecure          accept any server certificate (development only)
          --status-interval S print link status every S seconds (default 10, 0 = only on change of state)
          --version           print the version
          -h, --help          show this help

        A server that refuses the token (401/403/400) is tried again later while the others serve; the agent
        exits (code 3) only when every --server has refused it 3 times in a row.
        Ctrl+C or SIGTERM stops gracefully: no new streams, open streams finish (up to 30 s), then the links
        close; exit code 0. A second signal exits at once.
        """;

    public static AgentOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        var servers = new List<Uri>();
        var allow = new List<string>();
        var suffixes = new List<string>();
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
                case "--follow-suffix":
                    suffixes.Add(SuggestionPolicy.NormaliseSuffix(Value()));
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
        return new AgentOptions
        {
            Servers = servers,
            Session = session,
            Token = token,
            Allow = allowList,
            Links = links,
            InsecureSkipVerify = insecure,
            CaFile = caFile,
            StatusInterval = statusInterval,
            FollowSuffixes = suffixes,
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
