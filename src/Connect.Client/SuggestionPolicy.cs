namespace Connect.Client;

/// <summary>
/// Decides which servers a GOAWAY may send the agent to. The agent sends its token to every server it dials, so a
/// suggestion is followed only when it keeps TLS (never wss:// to ws://) and names a host the customer already trusts:
/// one of the configured servers' hosts, or a host under an explicitly configured suffix (<c>--follow-suffix</c>).
/// </summary>
public sealed class SuggestionPolicy
{
    private readonly HashSet<string> _hosts;
    private readonly IReadOnlyList<string> _suffixes;
    private readonly bool _requireTls;

    public SuggestionPolicy(IReadOnlyList<Uri> configured, IReadOnlyList<string> suffixes)
    {
        _hosts = configured.Select(HostOf).ToHashSet(StringComparer.OrdinalIgnoreCase);
        _suffixes = suffixes.Select(NormaliseSuffix).ToArray();
        // One wss:// server is enough to say "this customer's token travels under TLS": no suggestion may lower that.
        _requireTls = configured.Any(s => s.Scheme == "wss");
    }

    /// <summary>Normalises a --follow-suffix value to a leading-dot, lower-case suffix that matches whole labels only.</summary>
    public static string NormaliseSuffix(string suffix)
    {
        var trimmed = suffix.Trim().TrimEnd('.').ToLowerInvariant();
        if (trimmed.TrimStart('.').Length == 0 || trimmed.Contains('/') || trimmed.Contains(':') || trimmed.Contains('*'))
        {
            throw new ArgumentException($"--follow-suffix '{suffix}' is not a domain suffix such as .connect.example.com");
        }
        return trimmed.StartsWith('.') ? trimmed : "." + trimmed;
    }

    /// <summary>Parses <paramref name="suggestion"/> and says whether the agent may dial it; <paramref name="why"/> says why not.</summary>
    public bool TryAccept(string suggestion, out Uri server, out string why)
    {
        server = null!;
        try
        {
            server = AgentCommandLine.ParseServer(suggestion);
        }
        catch (ArgumentException)
        {
            why = "not a ws:// or wss:// URL";
            return false;
        }
        if (server.UserInfo.Length > 0)
        {
            why = "it carries user information";
            return false;
        }
        if (_requireTls && server.Scheme != "wss")
        {
            why = "it would drop TLS (the configured servers use wss://)";
            return false;
        }
        var host = HostOf(server);
        if (!_hosts.Contains(host) && !_suffixes.Any(s => host.EndsWith(s, StringComparison.OrdinalIgnoreCase)))
        {
            why = $"host '{host}' is not one of the configured servers' hosts" + (_suffixes.Count == 0 ? " (--follow-suffix allows more)" : $" nor under {string.Join(", ", _suffixes)}");
            return false;
        }
        why = "";
        return true;
    }

    private static string HostOf(Uri uri) => uri.IdnHost.TrimEnd('.').ToLowerInvariant();
}
