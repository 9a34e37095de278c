using System.CommandLine;
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
          --follow-suffix SUF a GOAWAY may also send the agent to hosts under this suffix (repeatable), e.g.
                              .connect.example.com; by default only to the hosts of the --server URLs, and never
                              from wss:// to ws://
          --ca-file FILE      trust this PEM CA for wss:// servers instead of the system roots
          --insecure          accept any server certificate (development only)
          --status-interval S print link status every S seconds (default 10, 0 = only on change of state)
          --shutdown-grace S  on SIGTERM or Ctrl+C, let open streams finish for up to S seconds (default 30)
          --version           print the version
          -h, --help          show this help

        A server that refuses the token (401/403/400) is tried again later while the others serve; the agent
        exits (code 3) only when every --server has refused it 3 times in a row.
        Ctrl+C or SIGTERM stops gracefully: no new streams, open streams finish (--shutdown-grace), then the links
        close; exit code 0. A second signal exits at once.

        Environment: CONNECT_TOKEN (the token), CONNECT_CLIENT_HOSTS_FILE (a hosts-format file consulted
        before the system resolver, for tests and pinning names).
        """;

    /// <summary>Parses the switches (System.CommandLine does the tokens; the checks here give each value's error).</summary>
    /// <exception cref="ArgumentException">A switch is unknown, lacks its value, or its value is wrong; the message says which.</exception>
    public static AgentOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        var server = new Option<string[]>("--server") { Arity = ArgumentArity.OneOrMore };
        var session = new Option<string>("--session");
        var token = new Option<string>("--token");
        var allow = new Option<string[]>("--allow") { Arity = ArgumentArity.OneOrMore };
        var links = new Option<string>("--links");
        var caFile = new Option<string>("--ca-file");
        var insecure = new Option<bool>("--insecure");
        var statusInterval = new Option<string>("--status-interval");
        var shutdownGrace = new Option<string>("--shutdown-grace");
        var followSuffix = new Option<string[]>("--follow-suffix") { Arity = ArgumentArity.OneOrMore };
        // No built-in help or version: Program prints Usage and the version itself, before parsing.
        var root = new Command("connect-client") { server, session, token, allow, links, caFile, insecure, statusInterval, shutdownGrace, followSuffix };
        // No @response files: a token or a pattern that starts with '@' is a value, not a file to read.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.UnmatchedTokens.Count > 0)
        {
            throw new ArgumentException($"unknown argument '{parse.UnmatchedTokens[0]}' (see --help)");
        }
        if (parse.Errors.Count > 0)
        {
            throw new ArgumentException(parse.Errors[0].Message);
        }

        var servers = (parse.GetValue(server) ?? []).Select(ParseServer).ToList();
        var sessionName = parse.GetValue(session);
        var tokenText = parse.GetValue(token) ?? environment(TokenVariable);
        if (servers.Count == 0)
        {
            throw new ArgumentException("at least one --server is required, e.g. --server ws://127.0.0.1:7070");
        }
        if (string.IsNullOrWhiteSpace(sessionName))
        {
            throw new ArgumentException("--session is required");
        }
        if (!SessionNames.IsValid(sessionName))
        {
            throw new ArgumentException($"--session '{sessionName}' is not a valid name: {SessionNames.Rule}");
        }
        if (string.IsNullOrEmpty(tokenText))
        {
            throw new ArgumentException($"a token is required: --token TOKEN or the {TokenVariable} environment variable");
        }
        var linkCount = 1;
        if (parse.GetValue(links) is { } linksText && (!int.TryParse(linksText, out linkCount) || linkCount is < 1 or > 8))
        {
            throw new ArgumentException($"--links must be 1..8, got '{linksText}'");
        }
        var ca = parse.GetValue(caFile);
        if (ca is not null && !File.Exists(ca))
        {
            throw new ArgumentException($"--ca-file '{ca}' does not exist");
        }
        AllowList allowList;
        try
        {
            var patterns = parse.GetValue(allow) ?? [];
            allowList = patterns.Length == 0 ? AllowList.Default : AllowList.Parse(patterns);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message);
        }
        var defaults = new AgentOptions { Servers = [], Session = "", Token = "" };
        var hostsFile = environment(HostsFileVariable);
        IHostResolver resolver = string.IsNullOrEmpty(hostsFile)
            ? SystemHostResolver.Instance
            : HostsFileResolver.Load(hostsFile, SystemHostResolver.Instance);
        return new AgentOptions
        {
            Servers = servers,
            Session = sessionName,
            Token = tokenText,
            Allow = allowList,
            Links = linkCount,
            InsecureSkipVerify = parse.GetValue(insecure),
            CaFile = ca,
            StatusInterval = Seconds(parse.GetValue(statusInterval), "--status-interval", defaults.StatusInterval),
            ShutdownGrace = Seconds(parse.GetValue(shutdownGrace), "--shutdown-grace", defaults.ShutdownGrace),
            FollowSuffixes = (parse.GetValue(followSuffix) ?? []).Select(SuggestionPolicy.NormaliseSuffix).ToArray(),
            Resolver = resolver,
        };
    }

    private static TimeSpan Seconds(string? text, string name, TimeSpan fallback)
    {
        if (text is null)
        {
            return fallback;
        }
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) || seconds < 0 || seconds > TimeSpan.FromDays(1).TotalSeconds)
        {
            throw new ArgumentException($"{name} must be a number of seconds, got '{text}'");
        }
        return TimeSpan.FromSeconds(seconds);
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
