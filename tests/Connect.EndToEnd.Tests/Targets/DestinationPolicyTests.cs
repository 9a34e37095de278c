using Connect.Proxy.Configuration;
using Connect.Proxy.Policy;

namespace Connect.EndToEnd.Tests.Targets;

/// <summary>
/// The server's destination policy in a table. The node never resolves names (DNS happens at the agent), so an address
/// rule is passed only by an address literal, in any spelling; a name never matches one.
/// </summary>
public sealed class DestinationPolicyTests
{
    private static readonly DestinationPolicy Policy = new([
        new DestinationRule { Sessions = "team-a-*", Allow = ["*.internal:443", "localhost:3000-3999", "10.9.8.*:80", "127.0.0.1:*"] },
        new DestinationRule { Sessions = "team-a-6*", Allow = ["[fd00::/8]:*,192.168.0.0/16:22"] },
        new DestinationRule { Sessions = "*-closed", Allow = [] },
    ]);

    [Theory]
    [InlineData("team-a-1", "app.internal:443", true)]
    [InlineData("team-a-1", "a.b.internal.:443", true)]
    [InlineData("team-a-1", "APP.INTERNAL:443", true)]
    [InlineData("team-a-1", "internal:443", false)]
    [InlineData("team-a-1", "evilinternal:443", false)]
    [InlineData("team-a-1", "x.internal.evil.com:443", false)]
    [InlineData("team-a-1", "app.internal:80", false)]
    [InlineData("team-a-1", "localhost:3500", true)]
    [InlineData("team-a-1", "localhost:4000", false)]
    [InlineData("team-a-1", "10.9.8.7:80", true)]
    [InlineData("team-a-1", "10.9.8.7.evil.example:80", false)]
    [InlineData("team-a-1", "127.0.0.1:22", true)]
    [InlineData("team-a-1", "2130706433:22", true)]
    [InlineData("team-a-1", "0177.0.0.1:22", true)]
    [InlineData("team-a-1", "0x7f.1:22", true)]
    [InlineData("team-a-1", "[::ffff:127.0.0.1]:22", true)]
    [InlineData("team-a-1", "127.0.0.2:22", false)]
    [InlineData("team-a-1", "localhost:22", false)] // would resolve to 127.0.0.1 at the agent, but the node does not resolve
    [InlineData("team-a-1", "127.0.0.1.nip.io:22", false)]
    [InlineData("team-a-1", "1.2.3.4.5:80", false)]
    [InlineData("team-a-6", "[fd00::1]:8443", true)]
    [InlineData("team-a-6", "192.168.10.1:22", true)]
    [InlineData("team-a-6", "192.169.0.1:22", false)]
    [InlineData("team-a-6", "127.0.0.1:22", true)] // both rules apply: team-a-* allows it
    [InlineData("x-closed", "localhost:80", false)]
    [InlineData("team-b-1", "anything.example:1", true)] // no rule names it: not restricted by the server
    public void Targets_are_matched_by_the_shared_matcher(string session, string target, bool allowed)
    {
        Assert.Equal(allowed, Policy.Allows(session, target, out var reason));
        Assert.Equal(allowed, reason.Length == 0);
        if (!allowed)
        {
            Assert.Contains($"{target} is not allowed by the server's destination policy", reason);
        }
    }

    [Fact]
    public void A_refusal_says_why_a_name_missed_an_address_rule()
    {
        Assert.False(Policy.Allows("team-a-1", "localhost:22", out var reason));
        Assert.Contains("a name never matches an address rule here", reason);
        Assert.False(Policy.Allows("team-a-1", "1.2.3.4.5:80", out var malformed));
        Assert.Contains("numeric IPv4 address but is not one", malformed);
    }

    [Theory]
    [InlineData("10.0.0.*.evil:80")]
    [InlineData("app.*:80")]
    [InlineData("10.0.0.1/8:80")]
    [InlineData("localhost")]
    public void A_bad_pattern_is_refused_naming_the_rule_and_the_pattern(string pattern)
    {
        var e = Assert.Throws<InvalidOperationException>(() => new DestinationPolicy([new DestinationRule { Sessions = "a", Allow = ["localhost:*"] }, new DestinationRule { Sessions = "b", Allow = [pattern] }]));
        Assert.Contains($"DestinationPolicy rule #2: pattern '{pattern}'", e.Message);
    }

    [Fact]
    public void A_node_with_a_bad_destination_pattern_refuses_to_start_naming_it()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Connect.Host.ConnectNode.Build([], new Dictionary<string, string?>
        {
            ["Connect:Proxy:Options:DestinationPolicy:0:Sessions"] = "team-a-*",
            ["Connect:Proxy:Options:DestinationPolicy:0:Allow:0"] = "10.9.8*:80",
        }));
        Assert.Contains("DestinationPolicy rule #1: pattern '10.9.8*:80'", e.Message);
    }
}
