using System.Net;
using Connect.Tunnel.Targets;

namespace Connect.Tunnel.Tests.Targets;

/// <summary>The shared destination matcher: every rule kind, every look-alike, canonical forms and bad patterns, in tables.</summary>
public class DestinationRulesTests
{
    [Theory]
    // Names: case, trailing dot, whole labels.
    [InlineData("App.Internal", "app.internal")]
    [InlineData("app.internal.", "app.internal")]
    [InlineData("LOCALHOST", "localhost")]
    [InlineData("under_score.example", "under_score.example")]
    [InlineData("10.0.0.1.evil.example", "10.0.0.1.evil.example")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    // Addresses in every spelling a resolver accepts become the address they mean.
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("127.0.0.1.", "127.0.0.1")]
    [InlineData("2130706433", "127.0.0.1")]
    [InlineData("0177.0.0.1", "127.0.0.1")]
    [InlineData("0x7f.1", "127.0.0.1")]
    [InlineData("0X7F.0.0.1", "127.0.0.1")]
    [InlineData("127.1", "127.0.0.1")]
    [InlineData("10.1.258", "10.1.1.2")]
    [InlineData("0", "0.0.0.0")]
    [InlineData("::1", "::1")]
    [InlineData("[::1]", "::1")]
    [InlineData("[::ffff:10.0.0.1]", "10.0.0.1")]
    [InlineData("::ffff:7f00:1", "127.0.0.1")]
    [InlineData("[FD00::AB]", "fd00::ab")]
    public void Hosts_are_canonicalised_before_any_rule_sees_them(string text, string canonical)
    {
        Assert.True(TargetHost.TryParse(text, out var host, out var error), error);
        Assert.Equal(canonical, host.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("a..b", "empty label")]
    [InlineData(".", "empty label")]
    [InlineData("a b", "contains ' '")]
    [InlineData("evil.com@10.0.0.1", "contains '@'")]
    [InlineData("bücher.example", "punycode")]
    [InlineData("1.2.3.4.5", "numeric IPv4 address but is not one")]
    [InlineData("256.0.0.1", "numeric IPv4 address but is not one")]
    [InlineData("4294967296", "numeric IPv4 address but is not one")]
    [InlineData("08.0.0.1", "numeric IPv4 address but is not one")]
    [InlineData("0x.1", "numeric IPv4 address but is not one")]
    [InlineData("evil.10", "numeric IPv4 address but is not one")]
    [InlineData("[::1", "unbalanced brackets")]
    [InlineData("fe80::1%eth0", "zone ids")]
    [InlineData("[127.0.0.1]", "not an IPv6 address")]
    public void Malformed_hosts_are_refused_with_a_reason(string text, string reason)
    {
        Assert.False(TargetHost.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Over_long_names_and_labels_are_refused()
    {
        Assert.False(TargetHost.TryParse(new string('a', 64) + ".example", out _, out var label));
        Assert.Contains("label longer than 63", label);
        Assert.False(TargetHost.TryParse(string.Join('.', Enumerable.Repeat(new string('a', 60), 5)), out _, out var name));
        Assert.Contains("longer than 253", name);
    }

    public static TheoryData<string, string, int, bool> Table => new()
    {
        // The finding: an octet wildcard is an address rule; a name made to look like an address is a name.
        { "10.0.0.*:80", "10.0.0.1", 80, true },
        { "10.0.0.*:80", "10.0.0.255", 80, true },
        { "10.0.0.*:80", "10.0.0.1.evil.example", 80, false },
        { "10.0.0.*:80", "10.0.1.1", 80, false },
        { "10.0.0.*:80", "10.0.0.1", 81, false },
        { "10.9.8.*:*", "10.9.8.7.nip.io", 443, false },
        { "10.*.*.1:*", "10.200.3.1", 1, true },
        { "10.*.*.1:*", "10.200.3.2", 1, false },
        // Exact addresses, in every spelling.
        { "127.0.0.1:*", "127.0.0.1", 3000, true },
        { "127.0.0.1:*", "2130706433", 3000, true },
        { "127.0.0.1:*", "0177.0.0.1", 3000, true },
        { "127.0.0.1:*", "0x7f.1", 3000, true },
        { "127.0.0.1:*", "127.1", 3000, true },
        { "127.0.0.1:*", "127.0.0.1.", 3000, true },
        { "127.0.0.1:*", "[::ffff:127.0.0.1]", 3000, true },
        { "127.0.0.1:*", "127.0.0.2", 3000, false },
        { "127.0.0.1:*", "localhost", 3000, false },
        { "127.0.0.1:*", "127.0.0.1.evil.example", 3000, false },
        // CIDR.
        { "10.0.0.0/8:443", "10.255.1.2", 443, true },
        { "10.0.0.0/8:443", "11.0.0.1", 443, false },
        { "10.0.0.0/8:443", "012.0.0.1", 443, true }, // octal 012 = 10
        { "10.0.0.0/8:443", "10.evil.example", 443, false },
        { "192.168.4.0/22:*", "192.168.7.255", 22, true },
        { "192.168.4.0/22:*", "192.168.8.0", 22, false },
        { "0.0.0.0/0:*", "8.8.8.8", 53, true },
        { "0.0.0.0/0:*", "[::1]", 53, false },
        // IPv6, blocks, mapped forms.
        { "[::1]:*", "::1", 8080, true },
        { "[::1]:*", "[0:0:0:0:0:0:0:1]", 8080, true },
        { "[::1]:*", "127.0.0.1", 8080, false },
        { "[fd00::/8]:443", "[fd12:3456::1]", 443, true },
        { "[fd00::/8]:443", "[fe80::1]", 443, false },
        { "[::ffff:10.0.0.0/104]:*", "10.1.2.3", 1, true },
        { "[::ffff:10.0.0.0/104]:*", "[::ffff:10.1.2.3]", 1, true },
        { "[::ffff:10.0.0.0/104]:*", "11.1.2.3", 1, false },
        // Names: exact, case, trailing dot; never an address.
        { "localhost:*", "LocalHost.", 3000, true },
        { "localhost:*", "127.0.0.1", 3000, false },
        { "localhost:*", "localhost.evil.example", 3000, false },
        { "localhost:*", "evillocalhost", 3000, false },
        { "app.internal:8000-8999", "app.internal", 8000, true },
        { "app.internal:8000-8999", "app.internal", 8999, true },
        { "app.internal:8000-8999", "app.internal", 9000, false },
        // Leading-label wildcard: any depth below the suffix, never the suffix itself, never a look-alike.
        { "*.internal:443", "a.internal", 443, true },
        { "*.internal:443", "a.b.internal", 443, true },
        { "*.internal:443", "A.Internal.", 443, true },
        { "*.internal:443", "internal", 443, false },
        { "*.internal:443", "evilinternal", 443, false },
        { "*.internal:443", "x.internal.evil.com", 443, false },
        { "*.internal:443", "a.internal", 80, false },
        // Any host.
        { "*", "anything.example", 1, true },
        { "*", "10.0.0.1", 65535, true },
        { "*:443", "[::1]", 443, true },
        { "*:443", "example.com", 80, false },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Rules_match_names_by_whole_labels_and_addresses_numerically(string pattern, string host, int port, bool allowed)
    {
        var rules = DestinationRules.Parse([pattern]);
        Assert.True(TargetHost.TryParse(host, out var target, out var error), error);
        Assert.Equal(allowed, rules.Allows(target, port));
    }

    [Theory]
    [InlineData("localhost", "must be host:port")]
    [InlineData("localhost:", "must be host:port")]
    [InlineData("localhost:0", "invalid port '0'")]
    [InlineData("localhost:65536", "invalid port")]
    [InlineData("localhost:90-80", "invalid port")]
    [InlineData("localhost:+80", "invalid port")]
    [InlineData("a*.internal:443", "'*' may only be")]
    [InlineData("*internal:443", "'*' may only be")]
    [InlineData("x.*.internal:443", "'*' may only be")]
    [InlineData("*.*.internal:443", "'*' may only be")]
    [InlineData("10.0.*:80", "'*' may only be")]
    [InlineData("10.0.0.1*:80", "'*' may only be")]
    [InlineData("*.10:80", "'*.' goes before a name")]
    [InlineData("10.0.0.0/33:80", "prefix length")]
    [InlineData("10.0.0.1/8:80", "bits set beyond the /8 prefix")]
    [InlineData("10.0.0/8:80", "four decimal octets")]
    [InlineData("127.1:80", "four decimal octets")]
    [InlineData("0x7f.0.0.1:80", "four decimal octets")]
    [InlineData("2130706433:80", "four decimal octets")]
    [InlineData("[fd00::1/8]:80", "bits set beyond the /8 prefix")]
    [InlineData("[fe80::1%eth0]:80", "zone ids")]
    [InlineData("[nonsense]:80", "not an IPv6 address")]
    [InlineData("bad host:80", "contains ' '")]
    [InlineData("1.2.3.4.5:80", "not one")]
    public void Bad_patterns_are_refused_naming_the_pattern(string pattern, string reason)
    {
        var e = Assert.Throws<FormatException>(() => DestinationRules.Parse(["localhost:*", pattern]));
        Assert.Contains($"pattern '{pattern}'", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Comma_separated_patterns_are_split_and_kept_as_written()
    {
        var rules = DestinationRules.Parse(["localhost:*, 10.0.0.0/8:443", "[::1]:*"]);
        Assert.Equal(["localhost:*", "10.0.0.0/8:443", "[::1]:*"], rules.Patterns);
        Assert.True(rules.HasAddressRuleFor(443));
        Assert.False(DestinationRules.Parse(["localhost:*", "10.0.0.0/8:443"]).HasAddressRuleFor(80));
        Assert.True(DestinationRules.Parse(["*"]).HasAddressRuleFor(80));
    }

    [Fact]
    public void Addresses_given_as_IPAddress_are_canonicalised_too()
    {
        var rules = DestinationRules.Parse(["10.0.0.0/8:*"]);
        Assert.True(rules.AllowsAddress(IPAddress.Parse("::ffff:10.1.2.3"), 80));
        Assert.False(rules.AllowsAddress(IPAddress.Parse("::ffff:11.1.2.3"), 80));
    }

    [Theory]
    [InlineData("team-a-*", "team-a-1", true)]
    [InlineData("team-a-*", "team-a-", true)]
    [InlineData("team-a-*", "team-b-1", false)]
    [InlineData("*", "anything", true)]
    [InlineData("exact", "exact", true)]
    [InlineData("exact", "exact2", false)]
    [InlineData("a*b*c", "axxbyyc", true)]
    [InlineData("a*b*c", "axxbyy", false)]
    [InlineData("*-prod", "eu-prod", true)]
    [InlineData("*-prod", "eu-prod-2", false)]
    public void Session_globs_match_without_regex(string pattern, string text, bool match)
    {
        Assert.Equal(match, new WildcardPattern(pattern).IsMatch(text));
    }
}
