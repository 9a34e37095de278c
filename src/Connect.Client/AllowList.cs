using Connect.Tunnel.Targets;
using System.Text.RegularExpressions;

namespace Connect.Client;

/// <summary>
/// The customer's destination policy: which "host:port" targets the cloud may reach through this agent.
/// Patterns are <c>host:port</c> where host may use <c>*</c> wildcards (<c>*.internal</c>) and port is a
/// number, a range (<c>8000-8999</c>) or <c>*</c>. A bare <c>*</c> allows everything. Names are matched
/// case-insensitively as the cloud sent them, before DNS (the agent resolves them itself).
/// </summary>
public sealed class AllowList
{
    /// <summary>Only this machine: what an agent allows when the customer says nothing.</summary>
    public static readonly IReadOnlyList<string> DefaultPatterns = ["localhost:*", "127.0.0.1:*", "[::1]:*"];

    private readonly IReadOnlyList<Rule> _rules;

    private AllowList(IReadOnlyList<string> patterns, IReadOnlyList<Rule> rules)
    {
        Patterns = patterns;
        _rules = rules;
    }

    private sealed record Rule(Regex Host, int MinPort, int MaxPort);

    public IReadOnlyList<string> Patterns { get; }

    public bool IsDefault => Patterns.SequenceEqual(DefaultPatterns);

    public static AllowList Default => Parse(DefaultPatterns);

    /// <summary>Parses patterns; throws <see cref="FormatException"/> naming the bad one.</summary>
    public static AllowList Parse(IEnumerable<string> patterns)
    {
        var list = patterns.SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        var rules = new List<Rule>();
        foreach (var pattern in list)
        {
            if (pattern == "*")
            {
                rules.Add(new Rule(new Regex("^.*$", RegexOptions.CultureInvariant), 1, 65535));
                continue;
            }
            if (!TargetAddress.TrySplit(pattern, out var host, out var portText))
            {
                throw new FormatException($"allow pattern '{pattern}' must be host:port (port may be *, N or N-M)");
            }
            var (min, max) = ParsePorts(pattern, portText);
            var regex = "^" + Regex.Escape(host.ToLowerInvariant()).Replace("\\*", "[^:]*") + "$";
            rules.Add(new Rule(new Regex(regex, RegexOptions.CultureInvariant), min, max));
        }
        return new AllowList(list, rules);
    }

    private static (int Min, int Max) ParsePorts(string pattern, string text)
    {
        if (text == "*")
        {
            return (1, 65535);
        }
        var dash = text.IndexOf('-');
        if (dash < 0 && int.TryParse(text, out var single) && single is >= 1 and <= 65535)
        {
            return (single, single);
        }
        if (dash > 0 && int.TryParse(text[..dash], out var lo) && int.TryParse(text[(dash + 1)..], out var hi) && lo is >= 1 and <= 65535 && hi >= lo && hi <= 65535)
        {
            return (lo, hi);
        }
        throw new FormatException($"allow pattern '{pattern}' has an invalid port '{text}'");
    }

    public bool Allows(string host, int port)
    {
        var normalized = host.ToLowerInvariant();
        foreach (var rule in _rules)
        {
            if (port >= rule.MinPort && port <= rule.MaxPort && rule.Host.IsMatch(normalized))
            {
                return true;
            }
        }
        return false;
    }

    public override string ToString() => string.Join(", ", Patterns);
}
