using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Connect.Tunnel.Targets;

/// <summary>
/// A list of destination patterns (the agent's <c>--allow</c>, the server's destination policy) and the one matcher
/// both use. A pattern is <c>*</c> (everything) or <c>host:port</c>; port is <c>N</c>, <c>N-M</c> or <c>*</c>; host is
/// <list type="bullet">
/// <item><c>*</c>: any host;</item>
/// <item>a name, <c>app.internal</c>: exactly that name (case and a trailing dot do not matter);</item>
/// <item><c>*.internal</c>: any name ending in the whole labels <c>.internal</c>, at any depth (<c>a.internal</c>,
/// <c>a.b.internal</c>), but not <c>internal</c> itself nor look-alikes (<c>evilinternal</c>, <c>x.internal.evil.com</c>);</item>
/// <item>an IPv4 address <c>10.0.0.1</c>, with whole octets wildcarded <c>10.9.8.*</c>, or a CIDR block <c>10.0.0.0/8</c>;</item>
/// <item>an IPv6 address or block in brackets: <c>[::1]</c>, <c>[fd00::/8]</c>.</item>
/// </list>
/// Name rules match names and address rules match addresses, numerically, after <see cref="TargetHost"/> has
/// canonicalised the target; a name never matches an address rule here (only a resolver can turn one into the
/// other, and the agent does that itself, see its TargetDialer). Matching is linear in the pattern count and the
/// host's length; there is no regex.
/// </summary>
public sealed class DestinationRules
{
    private readonly IReadOnlyList<DestinationRule> _rules;

    private DestinationRules(IReadOnlyList<string> patterns, IReadOnlyList<DestinationRule> rules)
    {
        Patterns = patterns;
        _rules = rules;
    }

    /// <summary>The patterns as written (after splitting at commas).</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>Parses patterns (each entry may hold several, comma-separated).</summary>
    /// <exception cref="FormatException">A pattern is malformed; the message names it and says what was expected.</exception>
    public static DestinationRules Parse(IEnumerable<string> patterns)
    {
        var list = patterns.SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        return new DestinationRules(list, list.Select(ParseOne).ToList());
    }

    /// <summary>True when a rule matches the canonical host (by its kind: names against name rules, addresses against address rules) and the port.</summary>
    public bool Allows(TargetHost host, int port) =>
        host.Address is { } address ? AllowsAddress(address, port) : AllowsName(host.Name!, port);

    public bool AllowsName(string canonicalName, int port)
    {
        foreach (var rule in _rules)
        {
            if (rule.CoversPort(port) && rule.MatchesName(canonicalName))
            {
                return true;
            }
        }
        return false;
    }

    public bool AllowsAddress(IPAddress address, int port)
    {
        address = TargetHost.Canonical(address);
        foreach (var rule in _rules)
        {
            if (rule.CoversPort(port) && rule.MatchesAddress(address))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True when some address rule (or <c>*</c>) covers the port: only then can resolving a name make it allowed.</summary>
    public bool HasAddressRuleFor(int port) => _rules.Any(r => r.IsAddressRule && r.CoversPort(port));

    /// <summary>True when any rule restricts by address (IPv4/IPv6, not <c>*</c>).</summary>
    public bool HasAddressRules => _rules.Any(r => r.Kind is DestinationRuleKind.IPv4 or DestinationRuleKind.IPv6);

    public override string ToString() => string.Join(", ", Patterns);

    private static DestinationRule ParseOne(string pattern)
    {
        if (pattern == "*")
        {
            return new DestinationRule(pattern, DestinationRuleKind.AnyHost, null, 0, 0, 1, 65535);
        }
        if (!TargetAddress.TrySplit(pattern, out var host, out var portText))
        {
            throw Bad(pattern, "must be host:port (port may be *, N or N-M; IPv6 in brackets: [::1]:443, [fd00::/8]:*)");
        }
        var (min, max) = ParsePorts(pattern, portText);
        if (host == "*")
        {
            return new DestinationRule(pattern, DestinationRuleKind.AnyHost, null, 0, 0, min, max);
        }
        if (host.StartsWith('['))
        {
            return ParseIPv6(pattern, host[1..^1], min, max);
        }
        if (host.Contains('/'))
        {
            return ParseIPv4Cidr(pattern, host, min, max);
        }
        if (host.Contains('*'))
        {
            return ParseWildcard(pattern, host, min, max);
        }
        if (!TargetHost.TryParse(host, out var target, out var error))
        {
            throw Bad(pattern, error);
        }
        if (target.Address is { } address)
        {
            // Patterns are written by people: accept only the plain spelling of an address, so "127.1" or "0x7f.1"
            // in a rule is a typo made visible rather than a surprise.
            if (address.AddressFamily != AddressFamily.InterNetwork || !IsDottedQuad(host))
            {
                throw Bad(pattern, "write an IPv4 address as four decimal octets (10.0.0.1); IPv6 goes in brackets ([::1])");
            }
            return new DestinationRule(pattern, DestinationRuleKind.IPv4, null, DestinationRule.ToNumber(address), uint.MaxValue, min, max);
        }
        return new DestinationRule(pattern, DestinationRuleKind.ExactName, target.Name, 0, 0, min, max);
    }

    private static DestinationRule ParseWildcard(string pattern, string host, int min, int max)
    {
        var labels = host.Split('.');
        if (labels.Length == 4 && labels.All(l => l == "*" || IsOctet(l)))
        {
            UInt128 value = 0, mask = 0;
            foreach (var label in labels)
            {
                value <<= 8;
                mask <<= 8;
                if (label != "*")
                {
                    value |= byte.Parse(label, CultureInfo.InvariantCulture);
                    mask |= 0xFF;
                }
            }
            return new DestinationRule(pattern, DestinationRuleKind.IPv4, null, value, mask, min, max);
        }
        if (labels.Length >= 2 && labels[0] == "*" && !host[2..].Contains('*'))
        {
            if (!TargetHost.TryParse(host[2..], out var suffix, out var error))
            {
                throw Bad(pattern, error);
            }
            if (suffix.IsAddress)
            {
                throw Bad(pattern, "'*.' goes before a name; for addresses wildcard whole octets (10.9.8.*) or use CIDR (10.0.0.0/8)");
            }
            return new DestinationRule(pattern, DestinationRuleKind.NameSuffix, "." + suffix.Name, 0, 0, min, max);
        }
        throw Bad(pattern, "'*' may only be the whole host (*), a whole leading label (*.example.com) or whole IPv4 octets (10.9.8.*)");
    }

    private static DestinationRule ParseIPv4Cidr(string pattern, string host, int min, int max)
    {
        var slash = host.IndexOf('/');
        var addressText = host[..slash];
        if (!IsDottedQuad(addressText) || !IPAddress.TryParse(addressText, out var address))
        {
            throw Bad(pattern, $"'{addressText}' is not an IPv4 address written as four decimal octets");
        }
        var prefix = ParsePrefix(pattern, host[(slash + 1)..], 32);
        return Block(pattern, DestinationRuleKind.IPv4, address, prefix, 32, min, max);
    }

    private static DestinationRule ParseIPv6(string pattern, string inner, int min, int max)
    {
        var slash = inner.IndexOf('/');
        var addressText = slash < 0 ? inner : inner[..slash];
        if (addressText.Contains('%') || !IPAddress.TryParse(addressText, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw Bad(pattern, $"'{addressText}' is not an IPv6 address (zone ids are not accepted)");
        }
        var prefix = slash < 0 ? 128 : ParsePrefix(pattern, inner[(slash + 1)..], 128);
        if (address.IsIPv4MappedToIPv6 && prefix >= 96)
        {
            // Targets in ::ffff:a.b.c.d form are matched as the IPv4 address they map, so the rule must be too.
            return Block(pattern, DestinationRuleKind.IPv4, address.MapToIPv4(), prefix - 96, 32, min, max);
        }
        return Block(pattern, DestinationRuleKind.IPv6, address, prefix, 128, min, max);
    }

    private static DestinationRule Block(string pattern, DestinationRuleKind kind, IPAddress address, int prefix, int bits, int min, int max)
    {
        var mask = DestinationRule.PrefixMask(prefix, bits);
        var value = DestinationRule.ToNumber(address);
        if ((value & mask) != value)
        {
            throw Bad(pattern, $"the address has bits set beyond the /{prefix} prefix (a block starts at its first address)");
        }
        return new DestinationRule(pattern, kind, null, value, mask, min, max);
    }

    private static int ParsePrefix(string pattern, string text, int bits)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix > bits || text.Length > 3)
        {
            throw Bad(pattern, $"the prefix length '/{text}' must be 0..{bits}");
        }
        return prefix;
    }

    private static (int Min, int Max) ParsePorts(string pattern, string text)
    {
        if (text == "*")
        {
            return (1, 65535);
        }
        var dash = text.IndexOf('-');
        if (dash < 0 && TryPort(text, out var single))
        {
            return (single, single);
        }
        if (dash > 0 && TryPort(text[..dash], out var lo) && TryPort(text[(dash + 1)..], out var hi) && hi >= lo)
        {
            return (lo, hi);
        }
        throw Bad(pattern, $"has an invalid port '{text}' (N, N-M with N <= M, or *; ports are 1..65535)");
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && text.Length <= 5 && port is >= 1 and <= 65535;

    private static bool IsOctet(string text) =>
        text.Length is >= 1 and <= 3 && text.All(char.IsAsciiDigit) && (text.Length == 1 || text[0] != '0') && int.Parse(text, CultureInfo.InvariantCulture) <= 255;

    private static bool IsDottedQuad(string text)
    {
        var parts = text.Split('.');
        return parts.Length == 4 && parts.All(IsOctet);
    }

    private static FormatException Bad(string pattern, string why) => new($"pattern '{pattern}': {why}");
}
