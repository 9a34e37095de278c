using System.Buffers.Text;
using System.Text;
using Connect.Tunnel.Targets;

namespace Connect.Proxy.Auth;

/// <summary>Parses <c>Proxy-Authorization: Basic base64(session:token)</c> (RFC 9110 section 11.7.2, RFC 7617).</summary>
public static class ProxyCredentials
{
    public readonly record struct Parsed(string Session, string Token);

    /// <summary>Returns null with a reason when the header is missing or malformed.</summary>
    public static Parsed? TryParse(string? header, out ProxyError error, out string reason)
    {
        error = ProxyError.None;
        reason = string.Empty;
        if (string.IsNullOrWhiteSpace(header))
        {
            error = ProxyError.MissingCredentials;
            reason = "proxy credentials required: send Proxy-Authorization: Basic base64(session:token)";
            return null;
        }
        var space = header.IndexOf(' ');
        if (space <= 0 || !header.AsSpan(0, space).Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            error = ProxyError.InvalidCredentials;
            reason = "only the Basic scheme is supported for Proxy-Authorization";
            return null;
        }
        var encoded = header[(space + 1)..].Trim();
        var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(encoded.Length)];
        if (!Convert.TryFromBase64String(encoded, bytes, out var length))
        {
            error = ProxyError.InvalidCredentials;
            reason = "Proxy-Authorization is not valid base64";
            return null;
        }
        string decoded;
        try
        {
            decoded = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 0, length);
        }
        catch (DecoderFallbackException)
        {
            error = ProxyError.InvalidCredentials;
            reason = "Proxy-Authorization credentials are not valid UTF-8";
            return null;
        }
        var colon = decoded.IndexOf(':');
        if (colon <= 0 || colon == decoded.Length - 1)
        {
            error = ProxyError.InvalidCredentials;
            reason = "Proxy-Authorization must carry session:token";
            return null;
        }
        var session = decoded[..colon];
        if (!SessionNames.IsValid(session))
        {
            error = ProxyError.InvalidCredentials;
            // The text before the colon is not echoed: a client that swapped the fields would see its token in a log.
            reason = $"the session name in Proxy-Authorization is not valid ({SessionNames.Rule})";
            return null;
        }
        return new Parsed(session, decoded[(colon + 1)..]);
    }
}
