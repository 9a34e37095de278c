using Akka.Actor;
using Akka.TestKit;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Testing.Actors;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Links;

/// <summary>
/// The link actor over a real multiplexer pair on a loopback WebSocket (the server side accepts no OPENs,
/// the agent side does), with a probe standing in for the shard region.
/// </summary>
public sealed class LinkActorTests(ITestOutputHelper output) : ActorTestBase(output), IAsyncLifetime
{
    private const string Session = "s1";
    private const string LinkId = "L1";
    private const string Node = "akka.tcp://connect@10.0.0.1:4053";
    private const string DataEndpoint = "10.0.0.1:7000";

    private MuxPair _pair = null!;
    private DateTimeOffset _since;
    private TestProbe _region = null!;

    public async Task InitializeAsync()
    {
        _pair = await MuxPair.StartAsync(TransportKind.WebSocket);
        _since = DateTimeOffset.UtcNow;
        _region = CreateTestProbe("region");
    }

    public async Task DisposeAsync() => await _pair.DisposeAsync();

    private IActorRef StartLink() =>
        Sys.ActorOf(LinkActor.Props(Session, LinkId, _pair.Server, _since, _region.Ref, Node, DataEndpoint, () => ["other.example:443"], NullLoggerFactory.Instance), "link-" + LinkId);

    private async Task<AttachLink> ExpectAttachAsync()
    {
        var attach = await _region.FishForMessageAsync<AttachLink>(_ => true, Bound);
        Assert.Equal(Session, attach.SessionId);
        Assert.Equal(LinkId, attach.LinkId);
        Assert.Equal(Node, attach.Node);
        Assert.Equal(DataEndpoint, attach.DataEndpoint);
        Assert.Equal(_since, attach.Since);
        return attach;
    }

    [Fact]
    public async Task Attaches_on_start()
    {
        var actor = StartLink();

        var attach = await ExpectAttachAsync();

        Assert.Equal(actor, attach.Link);
        Assert.Equal(new LinkLoad(0, 0, 0, 0, false), attach.Load with { BytesIn = 0, BytesOut = 0 });
    }

    [Fact]
    public async Task Attaches_again_when_the_entity_it_attached_to_stops()
    {
        var actor = StartLink();
        await ExpectAttachAsync();
        var entity = CreateTestProbe("entity");
        entity.Send(actor, new LinkAttached(Session, LinkId));

        // No need to wait for the watch: watching an actor that already stopped yields Terminated too.
        Sys.Stop(entity.Ref);

        await ExpectAttachAsync();
    }

    [Fact]
    public async Task Entity_it_moved_away_from_is_no_longer_watched()
    {
        var actor = StartLink();
        await ExpectAttachAsync();
        var before = CreateTestProbe("entity-before");
        var after = CreateTestProbe("entity-after");
        before.Send(actor, new LinkAttached(Session, LinkId));
        after.Send(actor, new LinkAttached(Session, LinkId));

        Sys.Stop(before.Ref);
        await _region.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));

        Sys.Stop(after.Ref);
        await ExpectAttachAsync();
    }

    /// <summary>
    /// Issue 16's control-plane item: once the entity has answered, load reports go straight to its reference (one remote
    /// message when it lives on another node), never through the shard region again.
    /// </summary>
    [Fact]
    public async Task Once_the_entity_answered_load_reports_go_to_it_directly_not_through_the_region()
    {
        var actor = StartLink();
        await ExpectAttachAsync();
        var entity = CreateTestProbe("entity");
        entity.Send(actor, new LinkAttached(Session, LinkId));

        await using var stream = await _pair.Server.OpenStreamAsync("echo:1").WaitAsync(Bound);
        var opened = await entity.FishForMessageAsync<ReportLinkLoad>(r => r.Load.ActiveStreams == 1, Bound);
        Assert.Equal(LinkId, opened.LinkId);
        await _region.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public async Task LinkUnknown_makes_the_link_attach_again()
    {
        var actor = StartLink();
        await ExpectAttachAsync();

        actor.Tell(new LinkUnknown(Session, LinkId), TestActor);

        await ExpectAttachAsync();
    }

    [Fact]
    public async Task Stream_opening_and_ending_are_reported_with_the_active_stream_count()
    {
        StartLink();
        await ExpectAttachAsync();

        await using var stream = await _pair.Server.OpenStreamAsync("echo:1").WaitAsync(Bound);
        var opened = await _region.FishForMessageAsync<ReportLinkLoad>(r => r.Load.ActiveStreams == 1, Bound);
        Assert.Equal(LinkId, opened.LinkId);
        Assert.Equal(1, opened.Load.StreamsOpened);

        // A clean end: our FIN, the echo's FIN back, read to the end.
        await stream.WriteAsync("ping"u8.ToArray());
        await stream.CompleteWritesAsync();
        var buffer = new byte[16];
        while (await stream.ReadAsync(buffer).AsTask().WaitAsync(Bound) > 0)
        {
        }

        var ended = await _region.FishForMessageAsync<ReportLinkLoad>(r => r.Load.ActiveStreams == 0, Bound);
        Assert.Equal(1, ended.Load.StreamsOpened);
        Assert.False(ended.Load.GoingAway);
    }

    [Fact]
    public async Task A_link_back_from_its_idle_beat_reports_the_bytes_of_an_open_stream_every_beat()
    {
        var actor = StartLink();
        await ExpectAttachAsync();
        var entity = CreateTestProbe("entity");
        entity.Send(actor, new LinkAttached(Session, LinkId));
        // The first beat (5-10 s after start) reports; with no stream open the next beat is the idle one, ~60 s on.
        await entity.FishForMessageAsync<ReportLinkLoad>(r => r.Load.ActiveStreams == 0, TimeSpan.FromSeconds(15));

        await using var stream = await _pair.Server.OpenStreamAsync("echo:1").WaitAsync(Bound);
        var opened = await entity.FishForMessageAsync<ReportLinkLoad>(r => r.Load.ActiveStreams == 1, Bound);
        await stream.WriteAsync("progress"u8.ToArray());

        // Bytes alone change no stream count: only a beat reports them, and with a stream open that is the 5 s beat.
        var progress = await entity.FishForMessageAsync<ReportLinkLoad>(r => r.Load.BytesOut > opened.Load.BytesOut, TimeSpan.FromSeconds(15));
        Assert.Equal(1, progress.Load.ActiveStreams);
    }

    [Fact]
    public async Task GoAwayLink_sends_GOAWAY_and_the_link_closes_after_its_last_stream()
    {
        var goAway = new TaskCompletionSource<GoAwayInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pair.Agent.GoAwayReceived += info => goAway.TrySetResult(info);
        var actor = StartLink();
        Watch(actor);
        await ExpectAttachAsync();
        await using var stream = await _pair.Server.OpenStreamAsync("echo:1").WaitAsync(Bound);

        actor.Tell(new GoAwayLink(GoAwayCode.Kicked, "operator kick"), TestActor);

        var info = await goAway.Task.WaitAsync(Bound);
        Assert.Equal(GoAwayCode.Kicked, info.Code);
        Assert.Equal("operator kick", info.Reason);
        Assert.Equal(["other.example:443"], info.SuggestedServers);
        var report = await _region.FishForMessageAsync<ReportLinkLoad>(r => r.Load.GoingAway, Bound);
        Assert.Equal(1, report.Load.ActiveStreams);
        // Still open while a stream is.
        Assert.False(_pair.Server.IsClosed);

        await stream.CompleteWritesAsync();
        var buffer = new byte[16];
        while (await stream.ReadAsync(buffer).AsTask().WaitAsync(Bound) > 0)
        {
        }

        var closed = await _pair.Server.Closed.WaitAsync(Bound);
        Assert.Equal(CloseCodes.GoingAway, closed.Code);
        Assert.Equal("drained", closed.Reason);
        var detach = await _region.FishForMessageAsync<DetachLink>(_ => true, Bound);
        Assert.Equal(LinkId, detach.LinkId);
        await ExpectTerminatedAsync(actor, Bound);
    }

    [Fact]
    public async Task GoAwayLink_on_an_idle_link_closes_it_at_once()
    {
        var actor = StartLink();
        Watch(actor);
        await ExpectAttachAsync();

        actor.Tell(new GoAwayLink(GoAwayCode.Draining, "node draining"), TestActor);

        Assert.Equal("drained", (await _pair.Server.Closed.WaitAsync(Bound)).Reason);
        await _region.FishForMessageAsync<DetachLink>(_ => true, Bound);
        await ExpectTerminatedAsync(actor, Bound);
    }

    [Fact]
    public async Task Closed_link_is_detached_and_its_actor_stops()
    {
        var actor = StartLink();
        Watch(actor);
        await ExpectAttachAsync();

        // The agent goes away: its close reaches the server side's multiplexer.
        await _pair.Agent.CloseAsync(CloseCodes.Normal, "agent quit").WaitAsync(Bound);

        var detach = await _region.FishForMessageAsync<DetachLink>(_ => true, Bound);
        Assert.Equal(Session, detach.SessionId);
        Assert.Equal(LinkId, detach.LinkId);
        Assert.Contains("agent quit", detach.Reason);
        await ExpectTerminatedAsync(actor, Bound);
    }
}
