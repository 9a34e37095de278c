using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Connect.Tunnel.Targets;

/// <summary>What one destination pattern's host part matches.</summary>
internal enum DestinationRuleKind
{
    /// <summary><c>*</c>: every name and every address.</summary>
    AnyHost,
    /// <summary><c>app.internal</c>: exactly this name.</summary>
    ExactName,
    /// <summary><c>*.internal</c>: names with one or more labels before this suffix (not the suffix itself).</summary>
    NameSuffix,
    /// <summary><c>10.0.0.1</c>, <c>10.9.8.*</c>, <c>10.0.0.0/8</c>: IPv4 addresses under a bit mask.</summary>
    IPv4,
    /// <summary><c>[::1]</c>, <c>[fd00::/8]</c>: IPv6 addresses under a prefix.</summary>
    IPv6,
}

/// <summary>One parsed destination pattern: a host matcher and a port range. Matching is a compare or a masked compare.</summary>
internal sealed record DestinationRule(string Text, DestinationRuleKind Kind, string? Name, UInt128 Value, UInt128 Mask, int MinPort, int MaxPort)
{
    public bool IsAddressRule => Kind is DestinationRuleKind.AnyHost or DestinationRuleKind.IPv4 or DestinationRuleKind.IPv6;

    public bool CoversPort(int port) => port >= MinPort && port <= MaxPort;

    /// <summary>A canonical name (see <see cref="TargetHost"/>) against a name rule; address rules never match a name.</summary>
    public bool MatchesName(string name) => Kind switch
    {
        DestinationRuleKind.AnyHost => true,
        DestinationRuleKind.ExactName => string.Equals(name, Name, StringComparison.Ordinal),
        // Name holds ".suffix": a whole-label suffix, so "evilinternal" and "x.internal.evil.com" do not match.
        DestinationRuleKind.NameSuffix => name.Length > Name!.Length && name.EndsWith(Name, StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>A canonical address (mapped IPv6 already turned into IPv4) against an address rule; name rules never match an address.</summary>
    public bool MatchesAddress(IPAddress address) => Kind switch
    {
        DestinationRuleKind.AnyHost => true,
        DestinationRuleKind.IPv4 => address.AddressFamily == AddressFamily.InterNetwork && (ToNumber(address) & Mask) == Value,
        DestinationRuleKind.IPv6 => address.AddressFamily == AddressFamily.InterNetworkV6 && (ToNumber(address) & Mask) == Value,
        _ => false,
    };

    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    public static UInt128 PrefixMask(int prefix, int bits) =>
        prefix == 0 ? UInt128.Zero : (bits == 32 ? (UInt128)(uint.MaxValue << (32 - prefix)) : UInt128.MaxValue << (128 - prefix));
}
