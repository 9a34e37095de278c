using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;

namespace Connect.Actors.Tests.Sessions;

/// <summary>The entity's decisions as pure functions: no actor system, references are <see cref="ActorRefs.Nobody"/> or fakes.</summary>
public sealed class SessionDecisionsTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly ImmutableHashSet<string> None = ImmutableHashSet<string>.Empty;

    private static AttachLink Attach(string linkId, int minutes = 0, int streams = 0, bool goingAway = false, IActorRef? link = null) =>
        new("s1", linkId, link ?? ActorRefs.Nobody, "node-" + linkId, linkId + ":7000", T0.AddMinutes(minutes), new LinkLoad(streams, streams, 0, 0, goingAway));

    private static SessionState With(params AttachLink[] attaches) => attaches.Aggregate(SessionState.Empty, SessionDecisions.Attach);

    [Fact]
    public void PickLink_takes_the_least_loaded_link()
    {
        var state = With(Attach("a", streams: 3), Attach("b", streams: 1), Attach("c", streams: 2));

        Assert.Equal("b", SessionDecisions.PickLink(state, None)!.LinkId);
    }

    [Fact]
    public void PickLink_takes_the_newest_link_on_a_tie()
    {
        var state = With(Attach("old", minutes: 0, streams: 1), Attach("new", minutes: 5, streams: 1), Attach("mid", minutes: 2, streams: 1));

        Assert.Equal("new", SessionDecisions.PickLink(state, None)!.LinkId);
    }

    [Fact]
    public void PickLink_counts_grants_the_link_has_not_reported_yet()
    {
        var state = With(Attach("a", minutes: 0), Attach("b", minutes: 1));
        state = SessionDecisions.Granted(state, state.Links["b"]);

        // b is newer but now has one estimated stream; a has none.
        Assert.Equal("a", SessionDecisions.PickLink(state, None)!.LinkId);
    }

    [Fact]
    public void PickLink_skips_links_going_away_and_excluded_links()
    {
        var state = With(Attach("leaving", streams: 0, goingAway: true), Attach("failed", streams: 0), Attach("busy", streams: 9));

        Assert.Equal("busy", SessionDecisions.PickLink(state, ["failed"])!.LinkId);
    }

    [Fact]
    public void PickLink_passes_over_a_link_on_an_unreachable_node_while_another_link_can_take_the_stream()
    {
        // "idle" is on a node the failure detector has given up on (crashed or frozen, not yet downed); "busy" is live.
        var state = With(Attach("idle", streams: 0), Attach("busy", streams: 9));
        IReadOnlySet<string> unreachable = new HashSet<string> { "node-idle" };

        Assert.Equal("busy", SessionDecisions.PickLink(state, None, unreachable)!.LinkId);
        Assert.Equal("idle", SessionDecisions.PickLink(state, None)!.LinkId);
        // The link on the unreachable node is still better than none (the node may only be slow).
        Assert.Equal("idle", SessionDecisions.PickLink(state, ["busy"], unreachable)!.LinkId);
    }

    [Fact]
    public void PickLink_is_null_when_no_link_can_take_a_stream()
    {
        Assert.Null(SessionDecisions.PickLink(SessionState.Empty, None));
        Assert.Null(SessionDecisions.PickLink(With(Attach("leaving", goingAway: true)), None));
        Assert.Null(SessionDecisions.PickLink(With(Attach("leaving", goingAway: true), Attach("failed")), ["failed"]));
    }

    [Fact]
    public void Activity_follows_the_links()
    {
        Assert.Equal(SessionActivity.Disconnected, SessionDecisions.Activity(SessionState.Empty));
        Assert.Equal(SessionActivity.Idle, SessionDecisions.Activity(With(Attach("a"), Attach("b"))));
        Assert.Equal(SessionActivity.Busy, SessionDecisions.Activity(With(Attach("a"), Attach("b", streams: 1))));
        Assert.Equal(SessionActivity.Draining, SessionDecisions.Activity(With(Attach("a", goingAway: true), Attach("b", streams: 2, goingAway: true))));
        // One link still taking streams: not draining.
        Assert.Equal(SessionActivity.Busy, SessionDecisions.Activity(With(Attach("a", goingAway: true, streams: 1), Attach("b"))));
    }

    [Fact]
    public void Attach_adds_a_link_and_attaching_again_replaces_it_and_forgets_its_grants()
    {
        var state = With(Attach("a", streams: 1));
        state = SessionDecisions.Granted(state, state.Links["a"]);
        Assert.Equal(2, state.EstimatedStreams);

        state = SessionDecisions.Attach(state, Attach("a", streams: 4));

        var entry = Assert.Single(state.Links.Values);
        Assert.Equal(4, entry.Load.ActiveStreams);
        Assert.Equal(0, entry.GrantsSinceReport);
        Assert.Equal("node-a", entry.Node);
        Assert.Equal("a:7000", entry.DataEndpoint);
        Assert.Equal(1, state.StreamsGranted);
    }

    [Fact]
    public void Detach_removes_only_the_named_link()
    {
        var state = With(Attach("a"), Attach("b"));

        state = SessionDecisions.Detach(state, "a");
        Assert.Equal(["b"], state.Links.Keys);

        // Unknown link: no change.
        Assert.Equal(["b"], SessionDecisions.Detach(state, "zzz").Links.Keys);
    }

    [Fact]
    public void DetachActor_removes_every_link_of_that_actor()
    {
        var one = new FakeRef("one");
        var two = new FakeRef("two");
        var state = With(Attach("a", link: one), Attach("b", link: two), Attach("c", link: one));

        state = SessionDecisions.DetachActor(state, one);

        Assert.Equal(["b"], state.Links.Keys);
        Assert.Equal(["b"], SessionDecisions.DetachActor(state, new FakeRef("other")).Links.Keys);
    }

    [Fact]
    public void Granted_counts_the_stream_on_the_link_and_the_session()
    {
        var state = With(Attach("a", streams: 2), Attach("b"));

        state = SessionDecisions.Granted(state, state.Links["a"]);
        state = SessionDecisions.Granted(state, state.Links["a"]);
        state = SessionDecisions.Granted(state, state.Links["b"]);

        Assert.Equal(2, state.Links["a"].GrantsSinceReport);
        Assert.Equal(4, state.Links["a"].EstimatedStreams);
        Assert.Equal(1, state.Links["b"].GrantsSinceReport);
        Assert.Equal(3, state.StreamsGranted);
        Assert.Equal(5, state.EstimatedStreams);
    }

    [Fact]
    public void Report_replaces_the_load_and_resets_grants_since_report()
    {
        var state = With(Attach("a"));
        state = SessionDecisions.Granted(state, state.Links["a"]);
        state = SessionDecisions.Granted(state, state.Links["a"]);

        state = SessionDecisions.Report(state, "a", new LinkLoad(1, 7, 100, 200, GoingAway: true));

        var entry = state.Links["a"];
        Assert.Equal(new LinkLoad(1, 7, 100, 200, true), entry.Load);
        Assert.Equal(0, entry.GrantsSinceReport);
        Assert.Equal(1, entry.EstimatedStreams);
        Assert.Equal(2, state.StreamsGranted);
    }

    [Fact]
    public void Report_for_an_unknown_link_changes_nothing()
    {
        var state = With(Attach("a"));

        Assert.Same(state, SessionDecisions.Report(state, "zzz", LinkLoad.Idle));
    }

    /// <summary>A distinct actor reference without an actor system (DetachActor compares references).</summary>
    private sealed class FakeRef(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "fake")) / name;

        public override IActorRefProvider Provider => throw new NotSupportedException();
    }

    [Fact]
    public void AttachRefusal_refuses_only_a_first_attach_past_the_link_limit()
    {
        var state = With(Attach("a"), Attach("b"), Attach("gone", goingAway: true));
        var first = Attach("c") with { FirstAttach = true };

        // Two links not going away hold the limit of two: a new link is refused, naming the limit.
        Assert.Contains("limit (Connect:Sessions:MaxLinksPerSession = 2)", SessionDecisions.AttachRefusal(state, first, maxLinks: 2));
        // Under the limit (the link going away does not count), it attaches.
        Assert.Null(SessionDecisions.AttachRefusal(state, first, maxLinks: 3));
        // A re-attach (the entity moved: the link already served the session), a link the entity knows, a link going
        // away, and an older node's attach (no flag) are never refused.
        Assert.Null(SessionDecisions.AttachRefusal(state, Attach("c"), maxLinks: 2));
        Assert.Null(SessionDecisions.AttachRefusal(state, Attach("a") with { FirstAttach = true }, maxLinks: 2));
        Assert.Null(SessionDecisions.AttachRefusal(state, Attach("d", goingAway: true) with { FirstAttach = true }, maxLinks: 2));
    }
}
