using Connect.Proxy.Configuration;
using Connect.Tunnel.Targets;

namespace Connect.Proxy.Policy;

/// <summary>
/// The server side's own destination policy (the agent's allow-list is the customer's; this one is the operator's):
/// rules whose <see cref="DestinationRule.Sessions"/> pattern matches a session apply to it, and a target must then
/// match one of their <see cref="DestinationRule.Allow"/> patterns. A session no rule names is not restricted here.
/// Patterns and matching are the agent's (<see cref="DestinationRules"/>). The node never resolves names (DNS
/// happens at the agent, on the customer's network), so an address rule here is passed only by an address literal
/// (in any spelling, canonicalised first); a name never matches an address rule.
/// </summary>
public sealed class DestinationPolicy
{
    private readonly IReadOnlyList<(WildcardPattern Sessions, DestinationRules Allow)> _rules;

    /// <exception cref="InvalidOperationException">A pattern is malformed; the message names the rule and the pattern.</exception>
    public DestinationPolicy(IEnumerable<DestinationRule> rules)
    {
        _rules = rules.Select((rule, i) =>
        {
            try
            {
                return (new WildcardPattern(rule.Sessions), DestinationRules.Parse(rule.Allow));
            }
            catch (FormatException e)
            {
                throw new InvalidOperationException($"DestinationPolicy rule #{i + 1}: {e.Message}", e);
            }
        }).ToList();
    }

    public bool IsEmpty => _rules.Count == 0;

    /// <summary>True when <paramref name="target"/> (host:port) may be opened for <paramref name="sessionId"/>; otherwise <paramref name="reason"/> says why.</summary>
    public bool Allows(string sessionId, string target, out string reason)
    {
        reason = string.Empty;
        var applied = false;
        var hasAddressRules = false;
        var allowed = new List<string>();
        TargetHost? host = null;
        var port = 0;
        var error = "it is not host:port";
        var parsed = TargetAddress.TryParse(target, out var hostText, out port) && TargetHost.TryParse(hostText, out host, out error);
        foreach (var (sessions, allow) in _rules)
        {
            if (!sessions.IsMatch(sessionId))
            {
                continue;
            }
            applied = true;
            hasAddressRules |= allow.HasAddressRules;
            allowed.AddRange(allow.Patterns);
            if (parsed && allow.Allows(host!, port))
            {
                return true;
            }
        }
        if (!applied)
        {
            return true;
        }
        var why = !parsed
            ? $" ({error})"
            : !host!.IsAddress && hasAddressRules ? " (a name never matches an address rule here: names are resolved only by the agent)" : string.Empty;
        reason = $"session '{sessionId}': {target} is not allowed by the server's destination policy{why} (allowed: {(allowed.Count == 0 ? "nothing" : string.Join(", ", allowed))})";
        return false;
    }
}
