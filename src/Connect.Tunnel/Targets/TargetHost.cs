using System.Net;
using System.Net.Sockets;

namespace Connect.Tunnel.Targets;

/// <summary>
/// A target's host in canonical form: either a DNS name (lower case, no trailing dot, whole labels of letters,
/// digits, '-' and '_') or an IP address (IPv4-mapped IPv6 becomes IPv4). Every legacy numeric IPv4 spelling that
/// resolvers accept (<c>2130706433</c>, <c>0177.0.0.1</c>, <c>0x7f.1</c>, <c>127.1</c>) is parsed to the address it
/// means, so a rule sees what would really be dialled; a name whose last label is numeric but is not such an address
/// is refused. Parsing is a single pass over the text: no regex, no backtracking.
/// </summary>
public sealed record TargetHost
{
    private const int MaxNameLength = 253;
    private const int MaxLabelLength = 63;

    private TargetHost(string? name, IPAddress? address)
    {
        Name = name;
        Address = address;
    }

    /// <summary>The canonical DNS name, or null when the host is an address.</summary>
    public string? Name { get; }

    /// <summary>The address, or null when the host is a name.</summary>
    public IPAddress? Address { get; }

    public bool IsAddress => Address is not null;

    public static TargetHost FromAddress(IPAddress address) => new(null, Canonical(address));

    /// <summary>IPv4-mapped IPv6 (<c>::ffff:10.0.0.1</c>) is the IPv4 address it maps; everything else is itself.</summary>
    public static IPAddress Canonical(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// Parses a host as a target names it (brackets optional around IPv6). On failure <paramref name="error"/> says
    /// why in words fit for an error answer.
    /// </summary>
    public static bool TryParse(string text, out TargetHost host, out string error)
    {
        host = null!;
        error = string.Empty;
        if (text.Length == 0)
        {
            error = "the host is empty";
            return false;
        }
        if (text[0] == '[' || text.Contains(':'))
        {
            var inner = text[0] == '[' ? (text[^1] == ']' && text.Length > 2 ? text[1..^1] : null) : text;
            if (inner is null)
            {
                error = $"'{text}' has unbalanced brackets";
                return false;
            }
            if (inner.Contains('%') || !IPAddress.TryParse(inner, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{text}' is not an IPv6 address (zone ids are not accepted)";
                return false;
            }
            host = FromAddress(v6);
            return true;
        }

        var name = text.EndsWith('.') && text.Length > 1 ? text[..^1] : text;
        if (name.Length > MaxNameLength)
        {
            error = $"the host name is longer than {MaxNameLength} characters";
            return false;
        }
        Span<char> lower = name.Length <= 256 ? stackalloc char[name.Length] : new char[name.Length];
        var labelStart = 0;
        for (var i = 0; i <= name.Length; i++)
        {
            if (i == name.Length || name[i] == '.')
            {
                var length = i - labelStart;
                if (length == 0)
                {
                    error = $"'{text}' has an empty label";
                    return false;
                }
                if (length > MaxLabelLength)
                {
                    error = $"'{text}' has a label longer than {MaxLabelLength} characters";
                    return false;
                }
                if (i < name.Length)
                {
                    lower[i] = '.';
                }
                labelStart = i + 1;
                continue;
            }
            var c = name[i];
            if (c is >= 'A' and <= 'Z')
            {
                c = (char)(c + ('a' - 'A'));
            }
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'))
            {
                error = c > 0x7F
                    ? $"'{text}' is not ASCII (send international names as punycode, xn--)"
                    : $"'{text}' contains '{c}', which no host name may contain";
                return false;
            }
            lower[i] = c;
        }
        var canonical = new string(lower);

        // A name whose last label is numeric is an IPv4 address in some spelling, or nothing (as WHATWG URL parsing
        // decides): resolvers read "0x7f.1" or "2130706433" as 127.0.0.1, so a matcher must read them the same way.
        var lastLabel = canonical[(canonical.LastIndexOf('.') + 1)..];
        if (!LooksNumeric(lastLabel))
        {
            host = new TargetHost(canonical, null);
            return true;
        }
        if (!TryParseLegacyIPv4(canonical, out var v4))
        {
            error = $"'{text}' looks like a numeric IPv4 address but is not one";
            return false;
        }
        host = FromAddress(v4);
        return true;
    }

    public override string ToString() => Name ?? Address!.ToString();

    private static bool LooksNumeric(string label)
    {
        if (label.StartsWith("0x", StringComparison.Ordinal))
        {
            return label.AsSpan(2).IndexOfAnyExcept("0123456789abcdef") < 0;
        }
        return label.AsSpan().IndexOfAnyExcept("0123456789") < 0;
    }

    /// <summary>inet_aton's grammar: 1-4 parts, each decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes.</summary>
    private static bool TryParseLegacyIPv4(string text, out IPAddress address)
    {
        address = IPAddress.None;
        Span<ulong> parts = stackalloc ulong[4];
        var count = 0;
        foreach (var range in text.AsSpan().Split('.'))
        {
            if (count == 4 || !TryParsePart(text.AsSpan(range), out parts[count]))
            {
                return false;
            }
            count++;
        }
        ulong value = 0;
        for (var i = 0; i < count - 1; i++)
        {
            if (parts[i] > 255)
            {
                return false;
            }
            value |= parts[i] << (8 * (3 - i));
        }
        var last = parts[count - 1];
        var lastBits = 8 * (5 - count);
        if (last >= 1UL << lastBits)
        {
            return false;
        }
        value |= last;
        address = new IPAddress([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
        return true;
    }

    private static bool TryParsePart(ReadOnlySpan<char> part, out ulong value)
    {
        value = 0;
        var radix = 10u;
        if (part.StartsWith("0x"))
        {
            radix = 16;
            part = part[2..];
            if (part.IsEmpty)
            {
                return false;
            }
        }
        else if (part.Length > 1 && part[0] == '0')
        {
            radix = 8;
            part = part[1..];
        }
        if (part.IsEmpty)
        {
            return false;
        }
        foreach (var c in part)
        {
            uint digit = c switch
            {
                >= '0' and <= '9' => (uint)(c - '0'),
                >= 'a' and <= 'f' => (uint)(c - 'a' + 10),
                _ => uint.MaxValue,
            };
            if (digit >= radix)
            {
                return false;
            }
            value = (value * radix) + digit;
            if (value > uint.MaxValue)
            {
                return false; // also bounds the loop's arithmetic: never more than 2^32 * 16
            }
        }
        return true;
    }
}
