using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.TestKit;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;
using Connect.Testing;
using Connect.Testing.Actors;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Sessions;

/// <summary>
/// The session entity without sharding: created as a child of a probe (which stands in for the shard and
/// receives <see cref="Passivate"/>), with a fake clock for hold deadlines. Links are probes.
/// </summary>
public sealed class SessionActorTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private const string Session = "s1";
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly ImmutableHashSet<string> None = ImmutableHashSet<string>.Empty;

    private readonly FakeTimeProvider _time = new(T0);

    private (IActorRef Entity, TestProbe Shard) StartEntity(SessionSettings? settings = null, ILoggerFactory? loggers = null)
    {
        var shard = CreateTestProbe("shard");
        var entity = shard.ChildActorOf(SessionActor.Props(Session, settings ?? new SessionSettings(), loggers ?? NullLoggerFactory.Instance, _time), "entity-" + Session);
        return (entity, shard);
    }

    private static OpenStream Open(string target = "example.com:443", params string[] exclude) =>
        new(Session, target, "node-x", exclude.ToImmutableHashSet());

    /// <summary>A request with an id, as the broker sends it (every re-sent copy carries the same id).</summary>
    private static OpenStream Request(string requestId, string target = "example.com:443") =>
        new(Session, target, "node-x", ImmutableHashSet<string>.Empty, requestId);

    [Fact]
    public async Task Resent_copies_of_a_waiting_request_count_once_against_MaxPendingOpens()
    {
        var (entity, _) = StartEntity(new SessionSettings { MaxPendingOpens = 2 });
        var copies = Enumerable.Range(0, 4).Select(i => CreateTestProbe("copy-" + i)).ToList();
        foreach (var copy in copies)
        {
            copy.Send(entity, Request("r1", "a:1"));
        }
        var second = CreateTestProbe("second");
        second.Send(entity, Request("r2", "b:1"));

        // Four copies of r1 and r2 fill the two places; nothing is refused.
        Assert.Equal(2, (await SnapshotAsync(entity)).PendingOpens);
        var third = CreateTestProbe("third");
        third.Send(entity, Request("r3", "c:1"));
        Assert.Contains("2 requests already waiting", (await third.ExpectMsgAsync<StreamRefused>(Bound)).Message);

        await AttachAsync(entity, "L1");

        // r1 is granted once, to its newest copy's sender; r2 once.
        await copies[^1].ExpectMsgAsync<StreamGranted>(Bound);
        await second.ExpectMsgAsync<StreamGranted>(Bound);
        foreach (var copy in copies.SkipLast(1))
        {
            await copy.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
        }
        Assert.Equal(2, (await SnapshotAsync(entity)).StreamsGranted);
    }

    [Fact]
    public async Task Copy_that_arrives_after_its_grant_gets_the_same_grant_and_is_not_counted_again()
    {
        var (entity, _) = StartEntity();
        await AttachAsync(entity, "L1");
        await AttachAsync(entity, "L2", sinceMinutes: 1);

        entity.Tell(Request("r1"), TestActor);
        var first = await ExpectMsgAsync<StreamGranted>(Bound);
        // A copy the region buffered during a hand-off arrives after the answer.
        var late = CreateTestProbe("late");
        late.Send(entity, Request("r1"));
        var again = await late.ExpectMsgAsync<StreamGranted>(Bound);

        Assert.Equal(first, again);
        Assert.Equal(1, (await SnapshotAsync(entity)).StreamsGranted);
        // The link loads count the one grant: the next request goes to the other, emptier link.
        entity.Tell(Request("r2"), TestActor);
        Assert.NotEqual(first.LinkId, (await ExpectMsgAsync<StreamGranted>(Bound)).LinkId);
    }

    [Fact]
    public async Task Request_to_a_session_without_an_agent_is_refused_once_however_many_copies_arrive()
    {
        using var capture = new CapturingLoggerProvider();
        using var loggers = new LoggerFactory([capture]);
        var (entity, _) = StartEntity(new SessionSettings { HoldTimeout = TimeSpan.FromSeconds(10) }, loggers);
        var copies = Enumerable.Range(0, 4).Select(i => CreateTestProbe("copy-" + i)).ToList();
        // The broker re-sends every 3 s while the request waits: four copies within the 10 s hold.
        for (var i = 0; i < copies.Count; i++)
        {
            if (i > 0)
            {
                _time.Advance(TimeSpan.FromSeconds(3));
            }
            copies[i].Send(entity, Request("r1"));
            Assert.Equal(1, (await SnapshotAsync(entity)).PendingOpens);
        }

        // 10 s after the first copy (the hold is not stretched by the copies).
        _time.Advance(TimeSpan.FromSeconds(1));
        var refused = await copies[^1].ExpectMsgAsync<StreamRefused>(Bound);
        Assert.Equal("session 's1' has no connected agent (waited 10 s)", refused.Message);
        // A copy still in flight gets the same answer, not a refusal of its own.
        var late = CreateTestProbe("late");
        late.Send(entity, Request("r1"));
        Assert.Equal(refused, await late.ExpectMsgAsync<StreamRefused>(Bound));

        foreach (var copy in copies.SkipLast(1))
        {
            await copy.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
        }
        Assert.Equal(1, (await SnapshotAsync(entity)).StreamsRefused);
        Assert.Single(capture.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("stream refused"));
    }

    /// <summary>Attaches a probe as link <paramref name="linkId"/> and waits for the entity's acknowledgement.</summary>
    private async Task<TestProbe> AttachAsync(IActorRef entity, string linkId, int streams = 0, bool goingAway = false, int sinceMinutes = 0)
    {
        var link = CreateTestProbe("link-" + linkId);
        link.Send(entity, new AttachLink(Session, linkId, link.Ref, "node-" + linkId, linkId + ".example:7000", T0.AddMinutes(sinceMinutes), new LinkLoad(streams, streams, 0, 0, goingAway)));
        await link.ExpectMsgAsync(new LinkAttached(Session, linkId), Bound);
        return link;
    }

    private async Task<SessionSnapshot> SnapshotAsync(IActorRef entity)
    {
        var probe = CreateTestProbe();
        probe.Send(entity, new GetSession(Session));
        return await probe.ExpectMsgAsync<SessionSnapshot>(Bound);
    }

    [Fact]
    public async Task Request_without_a_link_waits_and_is_granted_when_a_link_attaches()
    {
        var (entity, _) = StartEntity();
        entity.Tell(Open(), TestActor);

        var held = await SnapshotAsync(entity);
        Assert.Equal(1, held.PendingOpens);
        Assert.Equal(SessionActivity.Disconnected, held.State);

        await AttachAsync(entity, "L1");

        var granted = await ExpectMsgAsync<StreamGranted>(Bound);
        Assert.Equal(new StreamGranted(Session, "L1", granted.Link, "node-L1", "L1.example:7000"), granted);
        Assert.Equal("link-L1", granted.Link.Path.Name);
        Assert.Equal(0, (await SnapshotAsync(entity)).PendingOpens);
    }

    [Fact]
    public async Task Request_waiting_past_the_hold_time_is_refused_naming_the_session()
    {
        var (entity, _) = StartEntity(new SessionSettings { HoldTimeout = TimeSpan.FromSeconds(10) });
        entity.Tell(Open(), TestActor);
        Assert.Equal(1, (await SnapshotAsync(entity)).PendingOpens);

        _time.Advance(TimeSpan.FromSeconds(9));
        // The 200 ms expiry tick runs on Akka's scheduler: give it a few ticks; 9 s in, nothing is due.
        await ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));

        _time.Advance(TimeSpan.FromSeconds(1));
        var refused = await ExpectMsgAsync<StreamRefused>(Bound);

        Assert.Equal(Session, refused.SessionId);
        Assert.Equal(StreamRefusal.NoTunnel, refused.Reason);
        Assert.Equal("session 's1' has no connected agent (waited 10 s)", refused.Message);
        var snapshot = await SnapshotAsync(entity);
        Assert.Equal(0, snapshot.PendingOpens);
        Assert.Equal(1, snapshot.StreamsRefused);
    }

    [Fact]
    public async Task Requests_beyond_MaxPendingOpens_are_refused_at_once()
    {
        var (entity, _) = StartEntity(new SessionSettings { MaxPendingOpens = 2 });
        entity.Tell(Open("a:1"), TestActor);
        entity.Tell(Open("b:1"), TestActor);
        entity.Tell(Open("c:1"), TestActor);

        var refused = await ExpectMsgAsync<StreamRefused>(Bound);
        Assert.Equal(StreamRefusal.NoTunnel, refused.Reason);
        Assert.Contains("'s1'", refused.Message);
        Assert.Contains("2 requests already waiting", refused.Message);
        Assert.Equal(2, (await SnapshotAsync(entity)).PendingOpens);

        // The two that waited are granted once a link comes.
        await AttachAsync(entity, "L1");
        await ExpectMsgAsync<StreamGranted>(Bound);
        await ExpectMsgAsync<StreamGranted>(Bound);
    }

    [Fact]
    public async Task Streams_beyond_MaxStreamsPerSession_are_refused_counting_unreported_grants()
    {
        var (entity, _) = StartEntity(new SessionSettings { MaxStreamsPerSession = 3 });
        await AttachAsync(entity, "L1", streams: 1);

        entity.Tell(Open(), TestActor);
        entity.Tell(Open(), TestActor);
        entity.Tell(Open(), TestActor);
        await ExpectMsgAsync<StreamGranted>(Bound);
        await ExpectMsgAsync<StreamGranted>(Bound);
        var refused = await ExpectMsgAsync<StreamRefused>(Bound);
        Assert.Equal(StreamRefusal.TooManyStreams, refused.Reason);
        Assert.Equal("session 's1' has reached its limit of 3 open streams", refused.Message);

        // The link reports that only one stream is open: room for two more.
        entity.Tell(new ReportLinkLoad(Session, "L1", new LinkLoad(1, 3, 0, 0, false)), TestActor);
        entity.Tell(Open(), TestActor);
        await ExpectMsgAsync<StreamGranted>(Bound);
    }

    [Fact]
    public async Task Link_going_away_is_not_granted_and_the_request_waits_for_a_new_link()
    {
        var (entity, _) = StartEntity();
        var old = await AttachAsync(entity, "old", sinceMinutes: 0);
        entity.Tell(new ReportLinkLoad(Session, "old", new LinkLoad(0, 4, 0, 0, GoingAway: true)), old);

        entity.Tell(Open(), TestActor);
        var waiting = await SnapshotAsync(entity);
        Assert.Equal(1, waiting.PendingOpens);
        Assert.Equal(SessionActivity.Draining, waiting.State);

        await AttachAsync(entity, "new", sinceMinutes: 1);

        var granted = await ExpectMsgAsync<StreamGranted>(Bound);
        Assert.Equal("new", granted.LinkId);
        Assert.Equal(SessionActivity.Idle, (await SnapshotAsync(entity)).State);
    }

    [Fact]
    public async Task Request_whose_links_are_all_excluded_waits_even_when_links_are_usable()
    {
        var (entity, _) = StartEntity();
        await AttachAsync(entity, "L1");

        entity.Tell(Open("example.com:443", "L1"), TestActor);
        Assert.Equal(1, (await SnapshotAsync(entity)).PendingOpens);

        await AttachAsync(entity, "L2");
        Assert.Equal("L2", (await ExpectMsgAsync<StreamGranted>(Bound)).LinkId);
    }

    [Fact]
    public async Task Terminated_link_actor_is_forgotten()
    {
        var (entity, _) = StartEntity();
        var link = await AttachAsync(entity, "L1");

        Sys.Stop(link.Ref);

        await AwaitAssertAsync(async () => Assert.Empty((await SnapshotAsync(entity)).Links), Bound);
        entity.Tell(Open(), TestActor);
        Assert.Equal(1, (await SnapshotAsync(entity)).PendingOpens);
    }

    [Fact]
    public async Task DetachLink_forgets_the_link()
    {
        var (entity, _) = StartEntity();
        await AttachAsync(entity, "L1");
        await AttachAsync(entity, "L2");

        entity.Tell(new DetachLink(Session, "L1", "1000 (peer): bye"), TestActor);

        var snapshot = await SnapshotAsync(entity);
        Assert.Equal(["L2"], snapshot.Links.Select(l => l.LinkId));
    }

    [Fact]
    public async Task Load_report_from_an_unknown_link_gets_LinkUnknown()
    {
        var (entity, _) = StartEntity();

        entity.Tell(new ReportLinkLoad(Session, "stranger", LinkLoad.Idle), TestActor);

        await ExpectMsgAsync(new LinkUnknown(Session, "stranger"), Bound);
        Assert.Empty((await SnapshotAsync(entity)).Links);
    }

    [Fact]
    public async Task MoveSessionLinks_sends_GoAwayLink_to_every_link()
    {
        var (entity, _) = StartEntity();
        var one = await AttachAsync(entity, "L1");
        var two = await AttachAsync(entity, "L2");

        entity.Tell(new MoveSessionLinks(Session, "operator kick"), TestActor);

        await one.ExpectMsgAsync(new GoAwayLink(GoAwayCode.Kicked, "operator kick"), Bound);
        await two.ExpectMsgAsync(new GoAwayLink(GoAwayCode.Kicked, "operator kick"), Bound);
        Assert.Equal(2, (await ExpectMsgAsync<SessionSnapshot>(Bound)).Links.Count);
    }

    [Fact]
    public async Task GetSession_reports_state_links_and_counters()
    {
        var (entity, _) = StartEntity(new SessionSettings { MaxStreamsPerSession = 2 });
        Assert.Equal(SessionActivity.Disconnected, (await SnapshotAsync(entity)).State);

        await AttachAsync(entity, "newer", sinceMinutes: 5);
        await AttachAsync(entity, "older", sinceMinutes: 1);
        Assert.Equal(SessionActivity.Idle, (await SnapshotAsync(entity)).State);

        entity.Tell(Open(), TestActor);
        entity.Tell(Open(), TestActor);
        entity.Tell(Open(), TestActor);
        await ExpectMsgAsync<StreamGranted>(Bound);
        await ExpectMsgAsync<StreamGranted>(Bound);
        await ExpectMsgAsync<StreamRefused>(Bound);
        entity.Tell(new ReportLinkLoad(Session, "newer", new LinkLoad(1, 1, 10, 20, false)), TestActor);

        var snapshot = await SnapshotAsync(entity);

        Assert.Equal(Session, snapshot.SessionId);
        Assert.Equal(Cluster.Get(Sys).SelfAddress.ToString(), snapshot.EntityNode);
        Assert.Equal(SessionActivity.Busy, snapshot.State);
        Assert.Equal(["older", "newer"], snapshot.Links.Select(l => l.LinkId));
        Assert.Equal(new LinkSnapshot("newer", "node-newer", T0.AddMinutes(5), new LinkLoad(1, 1, 10, 20, false)), snapshot.Links[1]);
        Assert.Equal(0, snapshot.PendingOpens);
        Assert.Equal(2, snapshot.StreamsGranted);
        Assert.Equal(1, snapshot.StreamsRefused);
    }

    [Fact]
    public async Task Entity_without_links_or_requests_asks_its_parent_to_passivate()
    {
        var (entity, shard) = StartEntity(new SessionSettings { IdleStopAfter = TimeSpan.FromMilliseconds(300) });

        var passivate = await shard.ExpectMsgAsync<Passivate>(Bound);

        Assert.Equal(PoisonPill.Instance, passivate.StopMessage);
        Assert.Equal(entity, shard.LastSender);
    }

    [Fact]
    public async Task Entity_with_a_link_stays_and_passivates_after_the_link_leaves()
    {
        var (entity, shard) = StartEntity(new SessionSettings { IdleStopAfter = TimeSpan.FromMilliseconds(300) });
        await AttachAsync(entity, "L1");

        await shard.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(700));

        entity.Tell(new DetachLink(Session, "L1", "closed"), TestActor);
        await shard.ExpectMsgAsync<Passivate>(Bound);
    }

    [Fact]
    public async Task A_new_link_past_the_session_limit_is_refused_at_attach_and_a_reattaching_one_is_not()
    {
        var (entity, _) = StartEntity(new SessionSettings { MaxLinksPerSession = 1 });
        var first = CreateTestProbe("link-L1");
        first.Send(entity, new AttachLink(Session, "L1", first.Ref, "node-1", "node-1:7000", T0, LinkLoad.Idle, FirstAttach: true));
        await first.ExpectMsgAsync(new LinkAttached(Session, "L1"), Bound);

        // A second new link (the endpoint could not count in time and upgraded it) is refused: the limit holds.
        var second = CreateTestProbe("link-L2");
        second.Send(entity, new AttachLink(Session, "L2", second.Ref, "node-2", "node-2:7000", T0, LinkLoad.Idle, FirstAttach: true));
        Assert.Contains("already holds 1 links", (await second.ExpectMsgAsync<LinkRefused>(Bound)).Reason);
        Assert.Equal(["L1"], (await SnapshotAsync(entity)).Links.Select(l => l.LinkId));

        // A link re-attaching after the entity moved is never refused, even past the limit: it serves streams already.
        var back = CreateTestProbe("link-L3");
        back.Send(entity, new AttachLink(Session, "L3", back.Ref, "node-3", "node-3:7000", T0, new LinkLoad(2, 5, 0, 0, false), FirstAttach: false));
        await back.ExpectMsgAsync(new LinkAttached(Session, "L3"), Bound);
    }
}
