using Connect.Host.Draining;

namespace Connect.Cluster.Tests;

/// <summary>
/// The pure part of a drain's spread: the peers' shares of the drained links (water filling over their link counts)
/// and each session's first suggestion drawn from them. A surge roll still sends everyone to the empty replacement; a
/// scale-down splits the agents by the peers' room.
/// </summary>
public sealed class SuggestionSpreadTests
{
    private static readonly string[] SessionIds = [.. Enumerable.Range(0, 3000).Select(i => $"customer-{i:D5}")];

    private static Dictionary<string, int> FirstChoices(IReadOnlyDictionary<string, int> peerLinks, int toMove)
    {
        var shares = SuggestionSpread.Shares(peerLinks, toMove);
        return SessionIds.Select(s => SuggestionSpread.Pick(s, shares, p => p) ?? "none").GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
    }

    [Fact]
    public void A_surge_roll_sends_every_agent_to_the_replacement_that_has_no_links()
    {
        var choices = FirstChoices(new Dictionary<string, int> { ["old-1"] = 3000, ["old-2"] = 3000, ["replacement"] = 0 }, 3000);
        var only = Assert.Single(choices);
        Assert.Equal(("replacement", 3000), (only.Key, only.Value));
    }

    [Fact]
    public void A_scale_down_spreads_the_drained_agents_evenly_over_peers_that_hold_as_many_links()
    {
        var choices = FirstChoices(new Dictionary<string, int> { ["a"] = 3000, ["b"] = 3000, ["c"] = 3000 }, 3000);
        Assert.Equal(3, choices.Count);
        // 1,000 each expected; a binomial's standard deviation here is ~26, so +-150 is ~6 of them.
        Assert.All(choices.Values, n => Assert.InRange(n, 850, 1150));
    }

    [Fact]
    public void Shares_fill_the_emptiest_peers_up_to_a_common_level_and_sum_to_the_links_moved()
    {
        var shares = SuggestionSpread.Shares(new Dictionary<string, int> { ["a"] = 0, ["b"] = 300, ["c"] = 1000 }, 500);
        Assert.Equal(400, shares["a"], 6);
        Assert.Equal(100, shares["b"], 6);
        Assert.Equal(0, shares["c"], 6);

        var choices = FirstChoices(new Dictionary<string, int> { ["a"] = 0, ["b"] = 300, ["c"] = 1000 }, 500);
        Assert.False(choices.ContainsKey("c"));
        Assert.InRange(choices["a"], 2250, 2550); // 4/5 of 3,000
    }

    [Fact]
    public void Nothing_to_move_or_no_peer_gives_no_shares_and_no_pick()
    {
        Assert.Empty(SuggestionSpread.Shares(new Dictionary<string, int> { ["a"] = 5 }, 0));
        Assert.Empty(SuggestionSpread.Shares(new Dictionary<string, int>(), 10));
        Assert.Null(SuggestionSpread.Pick("s", new Dictionary<string, double>(), (string p) => p));
    }

    [Fact]
    public void A_sessions_pick_does_not_depend_on_the_order_the_peers_are_listed_in()
    {
        var forward = new Dictionary<string, double> { ["a"] = 1, ["b"] = 2, ["c"] = 3 };
        var backward = new Dictionary<string, double> { ["c"] = 3, ["b"] = 2, ["a"] = 1 };
        Assert.All(SessionIds.Take(200), s => Assert.Equal(SuggestionSpread.Pick(s, forward, p => p), SuggestionSpread.Pick(s, backward, p => p)));
    }
}
