using Connect.Tunnel.Targets;

namespace Connect.Client;

/// <summary>
/// The customer's destination policy: which "host:port" targets the cloud may reach through this agent. The
/// pattern language and the matcher are <see cref="DestinationRules"/> (shared with the server's destination policy):
/// names match whole labels (<c>*.internal</c>), addresses match numerically (<c>10.9.8.*</c>, <c>10.0.0.0/8</c>,
/// <c>[fd00::/8]</c>), ports are <c>N</c>, <c>N-M</c> or <c>*</c>, and a bare <c>*</c> allows everything.
/// <see cref="TargetDialer"/> applies it: a name reaches an address rule only through the agent's own resolution.
/// </summary>
public sealed class AllowList
{
    /// <summary>Only this machine: what an agent allows when the customer says nothing.</summary>
    public static readonly IReadOnlyList<string> DefaultPatterns = ["localhost:*", "127.0.0.1:*", "[::1]:*"];

    private AllowList(DestinationRules rules)
    {
        Rules = rules;
    }

    public DestinationRules Rules { get; }

    public IReadOnlyList<string> Patterns => Rules.Patterns;

    public bool IsDefault => Patterns.SequenceEqual(DefaultPatterns);

    public static AllowList Default => Parse(DefaultPatterns);

    /// <summary>Parses patterns; throws <see cref="FormatException"/> naming the bad one.</summary>
    public static AllowList Parse(IEnumerable<string> patterns)
    {
        try
        {
            return new AllowList(DestinationRules.Parse(patterns));
        }
        catch (FormatException e)
        {
            throw new FormatException("allow " + e.Message, e);
        }
    }

    /// <summary>
    /// The check without resolution: a name against the name rules, an address (in any spelling) against the
    /// address rules. A name that only an address rule could allow is refused here; <see cref="TargetDialer"/> resolves it.
    /// </summary>
    public bool Allows(string host, int port) =>
        TargetHost.TryParse(host, out var target, out _) && Rules.Allows(target, port);

    public override string ToString() => Rules.ToString();
}
