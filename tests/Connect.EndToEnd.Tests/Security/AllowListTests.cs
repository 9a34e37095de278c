using Connect.Client;

namespace Connect.EndToEnd.Tests.Security;

/// <summary>
/// The agent's allow list called directly (no agent, no network): the patterns of docs/SECURITY.md, the look-alike
/// names an attacker would try, and a parse error that names the bad pattern and says what was expected.
/// </summary>
public sealed class AllowListTests
{
    private static readonly AllowList Rules = AllowList.Parse([
        "10.9.8.*:80",
        "*.internal:443",
        "app.example:8000-8100",
        "Db.Corp.:5432",
        "[fd00::/8]:*",
        "10.0.0.0/8:22",
    ]);

    [Theory]
    [InlineData("10.9.8.7", 80, true)]
    [InlineData("10.9.8.7", 81, false)]
    [InlineData("10.9.8.7.evil.example", 80, false)]
    [InlineData("10.9.8.evil.example", 80, false)]
    [InlineData("evil.10.9.8.7", 80, false)]
    [InlineData("10.9.9.7", 80, false)]
    [InlineData("0x0a.9.8.7", 80, true)] // a legacy spelling of 10.9.8.7: matched as the address a resolver dials
    [InlineData("168364039", 80, true)] // 10.9.8.7 as one number
    [InlineData("010.9.8.7", 80, false)] // octal: 8.9.8.7
    [InlineData("::ffff:10.9.8.7", 80, true)] // IPv4-mapped IPv6 is the IPv4 address
    [InlineData("[::ffff:10.9.8.7]", 80, true)]
    [InlineData("app.internal", 443, true)]
    [InlineData("a.b.internal", 443, true)]
    [InlineData("APP.Internal.", 443, true)]
    [InlineData("internal", 443, false)]
    [InlineData("evilinternal", 443, false)]
    [InlineData("app.internal.evil.com", 443, false)]
    [InlineData("app.internal", 80, false)]
    [InlineData("app.example", 8000, true)]
    [InlineData("app.example", 8100, true)]
    [InlineData("app.example", 7999, false)]
    [InlineData("app.example", 8101, false)]
    [InlineData("app.example.evil", 8000, false)]
    [InlineData("db.corp", 5432, true)]
    [InlineData("DB.CORP.", 5432, true)]
    [InlineData("db.corp.evil", 5432, false)]
    [InlineData("[fd00::1]", 9, true)]
    [InlineData("fd00::1", 65535, true)]
    [InlineData("[fe80::1]", 9, false)]
    [InlineData("[fd00::1%eth0]", 9, false)]
    [InlineData("10.200.1.1", 22, true)]
    [InlineData("10.200.1.1", 23, false)]
    [InlineData("11.0.0.1", 22, false)]
    public void Allows_matches_names_by_whole_labels_and_addresses_numerically(string host, int port, bool allowed)
    {
        Assert.Equal(allowed, Rules.Allows(host, port));
    }

    [Theory]
    [InlineData("localhost", 80, true)]
    [InlineData("LOCALHOST.", 80, true)]
    [InlineData("127.0.0.1", 1, true)]
    [InlineData("[::1]", 65535, true)]
    [InlineData("127.0.0.2", 80, false)]
    [InlineData("localhost.evil.example", 80, false)]
    [InlineData("127.0.0.1.nip.io", 80, false)]
    [InlineData("10.0.0.1", 80, false)]
    public void The_default_allows_only_this_machine(string host, int port, bool allowed)
    {
        Assert.True(AllowList.Default.IsDefault);
        Assert.Equal(allowed, AllowList.Default.Allows(host, port));
    }

    [Theory]
    [InlineData("")]
    [InlineData("exa mple.internal")]
    [InlineData("exämple.internal")]
    [InlineData("app.internal/x")]
    [InlineData("[::1")]
    [InlineData("a..internal")]
    public void A_host_that_does_not_parse_is_refused_without_throwing(string host)
    {
        Assert.False(AllowList.Parse(["*"]).Allows(host, 443));
        Assert.False(Rules.Allows(host, 443));
    }

    [Fact]
    public void A_bare_star_allows_every_host_and_port_and_star_host_only_its_ports()
    {
        var all = AllowList.Parse(["*"]);
        Assert.True(all.Allows("anything.example", 1));
        Assert.True(all.Allows("192.0.2.1", 65535));
        var tls = AllowList.Parse(["*:443"]);
        Assert.True(tls.Allows("anything.example", 443));
        Assert.False(tls.Allows("anything.example", 80));
    }

    [Fact]
    public void Entries_split_at_commas_and_keep_their_text()
    {
        var list = AllowList.Parse(["a.example:1, b.example:2", "c.example:*"]);
        Assert.Equal(["a.example:1", "b.example:2", "c.example:*"], list.Patterns);
        Assert.False(list.IsDefault);
        Assert.True(list.Allows("b.example", 2));
        Assert.False(list.Allows("b.example", 1));
    }

    [Theory]
    [InlineData("10.9.8.7", "must be host:port")]
    [InlineData("::1:80", "must be host:port")]
    [InlineData("[::1:80", "must be host:port")]
    [InlineData("app.example:", "must be host:port")]
    [InlineData("app.example:0", "invalid port '0'")]
    [InlineData("app.example:65536", "invalid port '65536'")]
    [InlineData("app.example:90-80", "invalid port '90-80'")]
    [InlineData("app.example:+80", "invalid port '+80'")]
    [InlineData("app.example:http", "invalid port 'http'")]
    [InlineData("10.9.8*:80", "'*' may only be")]
    [InlineData("a*.example:80", "'*' may only be")]
    [InlineData("*.*.example:80", "'*' may only be")]
    [InlineData("*.10.9.8.7:80", "'*.' goes before a name")]
    [InlineData("127.1:80", "four decimal octets")]
    [InlineData("010.0.0.1:80", "four decimal octets")]
    [InlineData("10.0.0.1/8:80", "bits set beyond the /8 prefix")]
    [InlineData("10.0.0.0/33:80", "'/33' must be 0..32")]
    [InlineData("[fe80::1%eth0]:80", "zone ids are not accepted")]
    [InlineData("[fd00::/129]:80", "'/129' must be 0..128")]
    [InlineData("exämple.internal:443", "punycode")]
    [InlineData("a..internal:443", "empty label")]
    public void A_bad_pattern_is_refused_with_its_text_and_what_was_expected(string pattern, string expected)
    {
        var error = Assert.Throws<FormatException>(() => AllowList.Parse(["localhost:*", pattern]));
        Assert.StartsWith($"allow pattern '{pattern}': ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
