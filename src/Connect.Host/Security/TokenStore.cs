using System.Security.Cryptography;
using System.Text;
using Connect.Host.Configuration;
using Connect.Proxy.Auth;
using Connect.Tunnel.Targets;

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
    private readonly List<string> _warnings = [];

    public TokenStore(AuthSettings settings)
    {
        if (settings.Tokens.Count == 0)
        {
            IsDevelopment = true;
            _entries = [new Entry("development", Hash(settings.DevelopmentToken), ["*"], [new WildcardPattern("*")], [TokenScope.Agent, TokenScope.Proxy])];
            return;
        }
        _entries = settings.Tokens.Select(ToEntry).ToList();
        foreach (var entry in _entries)
        {
            var broad = entry.SessionPatterns.Where(p => p.Trim('*').Length == 0).ToList();
            if (broad.Count > 0)
            {
                _warnings.Add($"Connect:Auth:Tokens '{entry.Name}' may use every session ('{broad[0]}'), scopes {string.Join("+", entry.Scopes).ToLowerInvariant()}: whoever holds it reaches every customer's tunnel; bind it to a tenant's pattern such as 'team-a-*' unless it really is the device farm's");
            }
        }
    }

    private sealed record Entry(string Name, byte[] Hash, IReadOnlyList<string> SessionPatterns, IReadOnlyList<WildcardPattern> Sessions, IReadOnlyList<TokenScope> Scopes);

    /// <summary>Things an operator should know about the configured tokens (a token for every session), logged at start-up.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>True when no tokens are configured and the well-known development token is accepted.</summary>
    public bool IsDevelopment { get; }

    public ProxyAuthResult Authorize(string sessionId, string token) => Check(sessionId, token, TokenScope.Proxy);

    /// <summary>
    /// Checks a token for a session and scope. Every entry is compared, so timing does not reveal which matched. When the
    /// pair is not allowed and the session text hashes to a known token, the client swapped the fields: the answer says
    /// so (<see cref="ProxyAuthResult.FieldsSwapped"/>), and callers echo neither field.
    /// </summary>
    public ProxyAuthResult Check(string sessionId, string token, TokenScope scope)
    {
        var presented = Hash(token);
        var sessionAsToken = Hash(sessionId);
        var known = false;
        var permitted = false;
        var swapped = false;
        foreach (var entry in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, entry.Hash))
            {
                known = true;
                permitted |= entry.Scopes.Contains(scope) && entry.Sessions.Any(p => p.IsMatch(sessionId));
            }
            swapped |= CryptographicOperations.FixedTimeEquals(sessionAsToken, entry.Hash);
        }
        // A session text that is itself a known token is never echoed, even beside another valid token (403 names the session).
        return permitted ? ProxyAuthResult.Allowed
            : swapped ? ProxyAuthResult.FieldsSwapped
            : known ? ProxyAuthResult.SessionNotPermitted
            : ProxyAuthResult.InvalidToken;
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
        // No defaults: an entry that says nothing about sessions or scopes used to mean "every session, both scopes",
        // so a minimal agent token for customer A could attach to customer B's session. Say it, or the node does not start.
        if (config.Sessions.Count == 0 || config.Sessions.Any(string.IsNullOrWhiteSpace))
        {
            throw new InvalidOperationException(
                $"Connect:Auth:Tokens '{name}' has no Sessions: list the session name patterns this token may use (e.g. \"team-a-*\"; \"*\" only for a token that must reach every session)");
        }
        if (config.Scopes.Count == 0)
        {
            throw new InvalidOperationException(
                $"Connect:Auth:Tokens '{name}' has no Scopes: list \"agent\" (may attach tunnel links), \"proxy\" (may send proxy requests), or both");
        }
        // Only the names: Enum.TryParse would also take "0" or "7" (an undefined scope, a token good for nothing) and
        // "agent,proxy" (the flags OR, which is proxy alone), each silently unlike what the operator wrote.
        var scopes = config.Scopes.Select(s => Enum.TryParse<TokenScope>(s, ignoreCase: true, out var scope) && Enum.IsDefined(scope) && s.Trim().All(char.IsAsciiLetter)
            ? scope
            : throw new InvalidOperationException($"Connect:Auth:Tokens '{name}': unknown scope '{s}' (agent, proxy)")).Distinct().ToList();
        var patterns = config.Sessions.Select(p => p.Trim()).ToList();
        return new Entry(name, hash, patterns, patterns.Select(p => new WildcardPattern(p)).ToList(), scopes);
    }
}
