using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Connect.Host.Configuration;
using Connect.Proxy.Auth;

namespace Connect.Host.Security;

public enum TokenScope
{
    Agent,
    Proxy,
}

/// <summary>
/// Tokens held only as SHA-256 hashes and compared in constant time; each is bound to session name patterns
/// and scopes, so a token for session A can never reach session B. Tokens never appear in logs.
/// </summary>
public sealed class TokenStore : IProxyAuthenticator
{
    private readonly IReadOnlyList<Entry> _entries;

    public TokenStore(AuthSettings settings)
    {
        if (settings.Tokens.Count == 0)
        {
            IsDevelopment = true;
            _entries = [new Entry("development", Hash(settings.DevelopmentToken), [Glob("*")], [TokenScope.Agent, TokenScope.Proxy])];
            return;
        }
        _entries = settings.Tokens.Select(ToEntry).ToList();
    }

    private sealed record Entry(string Name, byte[] Hash, IReadOnlyList<Regex> Sessions, IReadOnlyList<TokenScope> Scopes);

    /// <summary>True when no tokens are configured and the well-known development token is accepted.</summary>
    public bool IsDevelopment { get; }

    public ProxyAuthResult Authorize(string sessionId, string token) => Check(sessionId, token, TokenScope.Proxy);

    /// <summary>Checks a token for a session and scope. Every entry is compared, so timing does not reveal which matched.</summary>
    public ProxyAuthResult Check(string sessionId, string token, TokenScope scope)
    {
        var presented = Hash(token);
        var known = false;
        var permitted = false;
        foreach (var entry in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, entry.Hash))
            {
                known = true;
                permitted |= entry.Scopes.Contains(scope) && entry.Sessions.Any(p => p.IsMatch(sessionId));
            }
        }
        return permitted ? ProxyAuthResult.Allowed : known ? ProxyAuthResult.SessionNotPermitted : ProxyAuthResult.InvalidToken;
    }

    public static string HashHex(string token) => Convert.ToHexStringLower(Hash(token));

    private static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static Entry ToEntry(TokenEntry config, int index)
    {
        var name = string.IsNullOrWhiteSpace(config.Name) ? $"token #{index + 1}" : config.Name;
        byte[] hash;
        if (!string.IsNullOrEmpty(config.Sha256))
        {
            try
            {
                hash = Convert.FromHexString(config.Sha256);
            }
            catch (FormatException)
            {
                throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': Sha256 must be 64 hex digits");
            }
            if (hash.Length != 32)
            {
                throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': Sha256 must be 64 hex digits");
            }
        }
        else if (!string.IsNullOrEmpty(config.Token))
        {
            if (config.Token.Length < 16)
            {
                throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': a token must be at least 16 characters");
            }
            hash = Hash(config.Token);
        }
        else
        {
            throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': give Token or Sha256");
        }
        var scopeNames = config.Scopes.Count == 0 ? ["agent", "proxy"] : config.Scopes;
        var sessionPatterns = config.Sessions.Count == 0 ? ["*"] : config.Sessions;
        var scopes = scopeNames.Select(s => Enum.TryParse<TokenScope>(s, ignoreCase: true, out var scope)
            ? scope
            : throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': unknown scope '{s}' (agent, proxy)")).ToList();
        return new Entry(name, hash, sessionPatterns.Select(Glob).ToList(), scopes);
    }

    private static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*") + "$", RegexOptions.CultureInvariant);
}
