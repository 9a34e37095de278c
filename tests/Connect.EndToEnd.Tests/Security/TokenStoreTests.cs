using Connect.Host.Configuration;
using Connect.Host.Security;
using Connect.Proxy.Auth;

namespace Connect.EndToEnd.Tests.Security;

/// <summary>
/// The token store called directly (no node): an entry must say which sessions and scopes it serves, a token serves
/// only sessions its own entry names (customer A's token never reaches customer B's session), and a client that
/// swapped session and token is told so without either being echoed.
/// </summary>
public sealed class TokenStoreTests
{
    private const string TokenA = "token-for-team-a-0001";
    private const string TokenB = "token-for-team-b-0001";
    private const string TokenShared = "token-shared-00000001";

    private static readonly TokenStore Store = new(new AuthSettings
    {
        Tokens =
        [
            new TokenEntry { Name = "team-a", Token = TokenA, Sessions = ["team-a-*"], Scopes = ["agent", "proxy"] },
            new TokenEntry { Name = "team-b", Sha256 = TokenStore.HashHex(TokenB).ToUpperInvariant(), Sessions = [" team-b-* "], Scopes = ["Proxy"] },
            // One token in two entries: each entry's scopes go with its own sessions, never with the other entry's.
            new TokenEntry { Name = "shared-agent", Token = TokenShared, Sessions = ["farm-*"], Scopes = ["agent"] },
            new TokenEntry { Name = "shared-proxy", Token = TokenShared, Sessions = ["lab-*-prod"], Scopes = ["PROXY"] },
        ],
    });

    [Theory]
    [InlineData("team-a-1", TokenA, TokenScope.Proxy, ProxyAuthResult.Allowed)]
    [InlineData("team-a-1", TokenA, TokenScope.Agent, ProxyAuthResult.Allowed)]
    [InlineData("team-a-", TokenA, TokenScope.Proxy, ProxyAuthResult.Allowed)]
    [InlineData("team-b-1", TokenA, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)] // A's token, B's session
    [InlineData("team-a-1", TokenB, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("team-b-1", TokenB, TokenScope.Proxy, ProxyAuthResult.Allowed)] // configured by hash, upper-case hex
    [InlineData("team-b-1", TokenB, TokenScope.Agent, ProxyAuthResult.SessionNotPermitted)] // proxy scope only
    [InlineData("team-ab-1", TokenA, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)] // look-alike sessions
    [InlineData("team-a", TokenA, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("xteam-a-1", TokenA, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("TEAM-A-1", TokenA, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("farm-1", TokenShared, TokenScope.Agent, ProxyAuthResult.Allowed)]
    [InlineData("farm-1", TokenShared, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("lab-x-prod", TokenShared, TokenScope.Proxy, ProxyAuthResult.Allowed)]
    [InlineData("lab-x-y-prod", TokenShared, TokenScope.Proxy, ProxyAuthResult.Allowed)]
    [InlineData("lab-x-prod2", TokenShared, TokenScope.Proxy, ProxyAuthResult.SessionNotPermitted)]
    [InlineData("lab-x-prod", TokenShared, TokenScope.Agent, ProxyAuthResult.SessionNotPermitted)]
    public void A_token_serves_only_the_sessions_and_scopes_of_its_own_entry(string session, string token, TokenScope scope, ProxyAuthResult expected)
    {
        Assert.Equal(expected, Store.Check(session, token, scope));
    }

    [Theory]
    [InlineData("")]
    [InlineData("TOKEN-FOR-TEAM-A-0001")]
    [InlineData("token-for-team-a-000")] // truncated
    [InlineData("token-for-team-a-0001 ")]
    [InlineData(" token-for-team-a-0001")]
    [InlineData("token-for-team-a-00011")]
    [InlineData("dev-token-not-secret")] // the development token means nothing once tokens are configured
    public void A_token_that_is_not_exactly_a_known_one_is_invalid(string token)
    {
        Assert.Equal(ProxyAuthResult.InvalidToken, Store.Check("team-a-1", token, TokenScope.Proxy));
        Assert.Equal(ProxyAuthResult.InvalidToken, Store.Authorize("team-a-1", token));
    }

    [Theory]
    [InlineData(TokenA, "team-a-1")]
    [InlineData(TokenA, "anything")]
    [InlineData(TokenB, TokenA)] // a known token in the session field, even beside a valid token
    public void Swapped_fields_are_reported_as_such(string session, string token)
    {
        Assert.Equal(ProxyAuthResult.FieldsSwapped, Store.Check(session, token, TokenScope.Proxy));
    }

    [Fact]
    public void Without_tokens_the_development_token_serves_every_session_in_both_scopes()
    {
        var store = new TokenStore(new AuthSettings { DevelopmentToken = "dev-token-for-tests" });
        Assert.True(store.IsDevelopment);
        Assert.Equal(ProxyAuthResult.Allowed, store.Check("any-session", "dev-token-for-tests", TokenScope.Agent));
        Assert.Equal(ProxyAuthResult.Allowed, store.Authorize("other", "dev-token-for-tests"));
        Assert.Equal(ProxyAuthResult.InvalidToken, store.Authorize("other", "dev-token-for-test"));
        Assert.False(Store.IsDevelopment);
    }

    [Theory]
    [InlineData("*")]
    [InlineData("**")]
    public void A_token_for_every_session_is_warned_about_without_naming_the_token(string pattern)
    {
        var store = new TokenStore(new AuthSettings
        {
            Tokens =
            [
                new TokenEntry { Name = "farm", Token = TokenA, Sessions = ["team-x-*", pattern], Scopes = ["agent"] },
                new TokenEntry { Name = "scoped", Token = TokenB, Sessions = ["team-b-*"], Scopes = ["agent"] },
            ],
        });
        var warning = Assert.Single(store.Warnings);
        Assert.Contains("'farm' may use every session", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(TokenA, warning, StringComparison.Ordinal);
        Assert.Empty(Store.Warnings);
    }

    public static TheoryData<TokenEntry, string> RefusedEntries => new()
    {
        { new TokenEntry { Name = "t", Token = TokenA, Scopes = ["agent"] }, "'t' has no Sessions" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*", " "], Scopes = ["agent"] }, "'t' has no Sessions" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*"] }, "'t' has no Scopes" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*"], Scopes = ["admin"] }, "unknown scope 'admin' (agent, proxy)" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*"], Scopes = ["0"] }, "unknown scope '0' (agent, proxy)" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*"], Scopes = ["7"] }, "unknown scope '7' (agent, proxy)" },
        { new TokenEntry { Name = "t", Token = TokenA, Sessions = ["team-a-*"], Scopes = ["agent,proxy"] }, "unknown scope 'agent,proxy' (agent, proxy)" },
        { new TokenEntry { Name = "t", Token = "short-token", Sessions = ["team-a-*"], Scopes = ["agent"] }, "'t': a token must be at least 16 characters" },
        { new TokenEntry { Name = "t", Sessions = ["team-a-*"], Scopes = ["agent"] }, "'t': give Token or Sha256" },
        { new TokenEntry { Name = "t", Sha256 = "not-hex", Sessions = ["team-a-*"], Scopes = ["agent"] }, "'t': Sha256 must be 64 hex digits" },
        { new TokenEntry { Name = "t", Sha256 = TokenStore.HashHex(TokenA)[..62], Sessions = ["team-a-*"], Scopes = ["agent"] }, "'t': Sha256 must be 64 hex digits" },
        { new TokenEntry { Token = TokenA, Scopes = ["agent"] }, "'token #1' has no Sessions" },
    };

    [Theory]
    [MemberData(nameof(RefusedEntries))]
    public void An_incomplete_or_malformed_entry_stops_the_node_with_a_clear_message(TokenEntry entry, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => new TokenStore(new AuthSettings { Tokens = [entry] }));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(TokenA, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("short-token", error.Message, StringComparison.Ordinal);
    }
}
