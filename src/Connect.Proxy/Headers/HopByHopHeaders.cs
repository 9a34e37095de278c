using Microsoft.Extensions.Primitives;

namespace Connect.Proxy.Headers;

/// <summary>
/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1): a proxy removes them, and
/// every header named in <c>Connection</c>, before forwarding. <c>Proxy-Authorization</c> is consumed here
/// and never reaches the target; <c>Expect</c> is answered by this hop.
/// </summary>
public static class HopByHopHeaders
{
    private static readonly HashSet<string> Always = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Expect",
    };

    /// <summary>The names a message must not carry past this hop, given its Connection header values (no allocation when it names none).</summary>
    public static IReadOnlySet<string> ForMessage(StringValues connectionHeader)
    {
        if (StringValues.IsNullOrEmpty(connectionHeader) || connectionHeader.All(v => string.IsNullOrWhiteSpace(v) || IsOnlyStandardTokens(v)))
        {
            return Always;
        }
        var names = new HashSet<string>(Always, StringComparer.OrdinalIgnoreCase);
        foreach (var value in connectionHeader)
        {
            if (value is null)
            {
                continue;
            }
            foreach (var token in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                names.Add(token);
            }
        }
        return names;
    }

    public static bool IsAlwaysHopByHop(string name) => Always.Contains(name);

    /// <summary>"keep-alive" and "close" name no extra header worth a set of its own.</summary>
    private static bool IsOnlyStandardTokens(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .All(t => t.Equals("keep-alive", StringComparison.OrdinalIgnoreCase) || t.Equals("close", StringComparison.OrdinalIgnoreCase) || Always.Contains(t));
}
