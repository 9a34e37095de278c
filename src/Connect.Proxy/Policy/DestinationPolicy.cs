using System.Text.RegularExpressions;
using Connect.Proxy.Configuration;
using Connect.Tunnel.Targets;

namespace Connect.Proxy.Policy;

/// <summary>
/// The server side's own destination policy (the agent's allow-list is the customer's; this one is the operator's):
/// rules whose <see cref="DestinationRule.Sessions"/> pattern matches a session apply to it, and a target must then
/// match one of their <see cref="DestinationRule.Allow"/> patterns. A session no rule names is not restricted here.
/// Patterns are the agent's: <c>host:port</c>, <c>*</c> wildcards in the host, port <c>N</c>, <c>N-M</c> or <c>*</c>, or a bare <c>*</c>.
/// </summary>
public sealed class DestinationPolicy
{
    private readonly IReadOnlyList<(Regex Sessions, IReadOnlyList<string> Text, IReadOnlyList<TargetPattern> Allow)> _rules;

    public DestinationPolicy(IEnumerable<DestinationRule> rules)
    {
        _rules = rules.Select((rule, i) =>
        {
            var allow = rule.Allow.SelectMany(a => a.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            return (Glob(rule.Sessions), (IReadOnlyList<string>)allow, (IReadOnlyList<TargetPattern>)allow.Select(p => TargetPattern.Parse(p, $"DestinationPolicy rule #{i + 1}")).ToList());
        }).ToList();
    }

    public bool IsEmpty => _rules.Count == 0;

    /// <summary>True when <paramref name="target"/> (host:port) may be opened for <paramref name="sessionId"/>; otherwise <paramref name="reason"/> says why.</summary>
    public bool Allows(string sessionId, string target, out string reason)
    {
        reason = string.Empty;
        var applied = false;
        var allowed = new List<string>();
        foreach (var (sessions, text, allow) in _rules)
        {
            if (!sessions.IsMatch(sessionId))
            {
                continue;
            }
            applied = true;
            allowed.AddRange(text);
            if (TargetAddress.TrySplit(target, out var host, out var portText) && int.TryParse(portText, out var port) && allow.Any(p => p.Matches(host, port)))
            {
                return true;
            }
        }
        if (!applied)
        {
            return true;
        }
        reason = $"session '{sessionId}': {target} is not allowed by the server's destination policy (allowed: {(allowed.Count == 0 ? "nothing" : string.Join(", ", allowed))})";
        return false;
    }

    private static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*") + "$", RegexOptions.CultureInvariant);
}

/// <summary>One <c>host:port</c> pattern (see <see cref="DestinationPolicy"/>).</summary>
public sealed record TargetPattern(Regex Host, int MinPort, int MaxPort)
{
    public bool Matches(string host, int port) => port >= MinPort && port <= MaxPort && Host.IsMatch(host.ToLowerInvariant());

    /// <summary>Parses a pattern; throws <see cref="InvalidOperationException"/> naming it when it is malformed (a configuration error).</summary>
    public static TargetPattern Parse(string pattern, string where)
    {
        if (pattern == "*")
        {
            return new TargetPattern(new Regex("^.*$", RegexOptions.CultureInvariant), 1, 65535);
        }
        if (!TargetAddress.TrySplit(pattern, out var host, out var portText))
        {
            throw new InvalidOperationException($"{where}: pattern '{pattern}' must be host:port (port may be *, N or N-M)");
        }
        int min, max;
        var dash = portText.IndexOf('-');
        if (portText == "*")
        {
            (min, max) = (1, 65535);
        }
        else if (dash < 0 && int.TryParse(portText, out var single) && single is >= 1 and <= 65535)
        {
            (min, max) = (single, single);
        }
        else if (dash > 0 && int.TryParse(portText[..dash], out var lo) && int.TryParse(portText[(dash + 1)..], out var hi) && lo is >= 1 and <= 65535 && hi >= lo && hi <= 65535)
        {
            (min, max) = (lo, hi);
        }
        else
        {
            throw new InvalidOperationException($"{where}: pattern '{pattern}' has an invalid port '{portText}'");
        }
        // [^:]* keeps a wildcard inside one host (it cannot swallow the port separator of an IPv6 literal's brackets).
        var regex = "^" + Regex.Escape(host.ToLowerInvariant()).Replace("\\*", "[^:]*") + "$";
        return new TargetPattern(new Regex(regex, RegexOptions.CultureInvariant), min, max);
    }
}
