using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging;

namespace Connect.Actors.Links;

/// <summary>
/// Represents one tunnel link to its session entity, wherever sharding placed it: attaches on start,
/// re-attaches when the entity moves (hand-off, node crash), reports the link's load, and carries out the
/// entity's lifecycle decisions (GOAWAY, close when drained). The bytes never pass through it.
/// </summary>
public sealed class LinkActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan ReportDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);

    // An idle link's load only changes by keep-alive bytes: its heartbeat report is skipped unless something the
    // entity decides with changed, and sent anyway every 12th beat (60 s), which also repairs an entity that lost the
    // link without the watch noticing. At 10,000 idle links this is ~170 instead of 2,000 remote messages a second.
    private const int UnchangedBeatsPerReport = 12;

    // And an idle link does not even beat every 5 s: with no stream open and its entity known, the next beat is the
    // forced report itself, 60 s on (+-5 s jitter so links attached together spread out). Stream changes and GOAWAY
    // report at once anyway (ReportNow), and a stream opening brings the 5 s beat back for byte progress. At 10,000
    // idle links this is ~170 instead of 2,000 timer ticks (each a mailbox run on the dispatcher) a second.
    private static readonly TimeSpan IdleBeat = HeartbeatInterval * UnchangedBeatsPerReport;
    private static readonly TimeSpan IdleBeatJitter = TimeSpan.FromSeconds(5);

    private readonly LinkParts _link;
    private readonly IActorRef _region;
    private readonly string _node;
    private readonly string _dataEndpoint;
    private readonly Func<IReadOnlyList<string>> _suggestedServers;
    private readonly ILogger _logger;
    private IActorRef? _entity;
    private LinkLoad? _lastReported;
    private int _unchangedBeats;
    private bool _goingAway;
    private bool _attachedOnce;
    private bool _fastBeat;
    private Action<TunnelMux>? _onStreamsChanged;
    private Action<GoAwayInfo>? _onGoAway;

    public LinkActor(string sessionId, string linkId, TunnelMux mux, DateTimeOffset since, IActorRef region, string node, string dataEndpoint, Func<IReadOnlyList<string>> suggestedServers, ILoggerFactory loggers)
    {
        _link = new LinkParts(sessionId, linkId, mux, since);
        _region = region;
        _node = node;
        _dataEndpoint = dataEndpoint;
        _suggestedServers = suggestedServers;
        _logger = loggers.CreateLogger<LinkActor>();

        Receive<LinkAttached>(_ =>
        {
            _attachedOnce = true;
            if (!Sender.Equals(_entity))
            {
                if (_entity is not null)
                {
                    Context.Unwatch(_entity);
                }
                _entity = Sender;
                Context.Watch(_entity);
            }
        });
        Receive<Terminated>(t => t.ActorRef.Equals(_entity), _ =>
        {
            // The entity moved (hand-off) or its node died: attach to wherever it is re-created.
            _entity = null;
            _logger.LogInformation("session {SessionId}: entity of link {LinkId} stopped; re-attaching", _link.SessionId, _link.LinkId);
            Attach();
            BeatFast(); // until the re-created entity answers, every beat goes through the region
        });
        Receive<LinkUnknown>(_ => Attach());
        Receive<LinkRefused>(refused =>
        {
            // The session's link limit, checked by the entity because the endpoint could not count in time: the agent
            // gets a close code that says so (a limit, not a fault) rather than a link no stream is ever routed to.
            _logger.LogWarning("session {SessionId}: link {LinkId} refused by its entity: {Reason}", _link.SessionId, _link.LinkId, refused.Reason);
            _ = _link.Mux.CloseAsync(CloseCodes.TooManyLinks, Truncate(refused.Reason));
        });
        Receive<StreamsChanged>(_ =>
        {
            if (!Timers.IsTimerActive(nameof(ReportNow)))
            {
                Timers.StartSingleTimer(nameof(ReportNow), ReportNow.Instance, ReportDelay);
            }
            if (_link.Mux.ActiveStreams > 0)
            {
                BeatFast(); // byte progress of the open streams
            }
            CloseIfDrained();
        });
        Receive<ReportNow>(_ => Report());
        Receive<Heartbeat>(_ =>
        {
            var load = Load();
            // Until the entity has answered (after a crash its shard may still point at the dead node, and an attach
            // sent then is lost), every beat goes through the region: an entity that does not know the link answers
            // LinkUnknown and the link attaches again within one beat, as it did before reports were skipped.
            if (_entity is null || Changed(_lastReported, load) || !_fastBeat || ++_unchangedBeats >= UnchangedBeatsPerReport)
            {
                Report(load);
            }
            ScheduleBeat();
        });
        Receive<GoAwayLink>(goAway =>
        {
            if (_link.Mux.GoAway(goAway.Code, goAway.Reason, _suggestedServers()))
            {
                _logger.LogInformation("session {SessionId}: link {LinkId} sent GOAWAY ({Code}: {Reason}) with {ActiveStreams} streams open", _link.SessionId, _link.LinkId, goAway.Code, goAway.Reason, _link.Mux.ActiveStreams);
            }
            _goingAway = true;
            Report();
            CloseIfDrained();
        });
        Receive<PeerGoingAway>(msg =>
        {
            _logger.LogInformation("session {SessionId}: agent sent GOAWAY on link {LinkId} ({Code}: {Reason})", _link.SessionId, _link.LinkId, msg.Info.Code, msg.Info.Reason);
            // The load report says "going away" (the mux knows), so no new stream is routed here. Closing is left to the
            // agent, as in HTTP/2 the side that sent GOAWAY closes: it closes with 1000 once its streams are done, and a
            // close from this side racing it would turn the agent's clean stop into the server's 1001.
            Report();
        });
        Receive<LinkClosed>(closed =>
        {
            _logger.LogInformation("session {SessionId}: link {LinkId} closed: {CloseInfo}", _link.SessionId, _link.LinkId, closed.Info);
            _region.Tell(new DetachLink(_link.SessionId, _link.LinkId, closed.Info.ToString()));
            Context.Stop(Self);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="mux">The link's multiplexer: the actor watches its streams and closing, and sends GOAWAY on it; the bytes stay in the multiplexer.</param>
    public static Props Props(string sessionId, string linkId, TunnelMux mux, DateTimeOffset since, IActorRef region, string node, string dataEndpoint, Func<IReadOnlyList<string>> suggestedServers, ILoggerFactory loggers) =>
        Akka.Actor.Props.Create(() => new LinkActor(sessionId, linkId, mux, since, region, node, dataEndpoint, suggestedServers, loggers));

    /// <summary>What the actor knows of its link (the data path's <c>TunnelLink</c> lives in Connect.Routing, which references this project).</summary>
    private sealed record LinkParts(string SessionId, string LinkId, TunnelMux Mux, DateTimeOffset Since);

    private sealed record StreamsChanged
    {
        public static readonly StreamsChanged Instance = new();
    }

    private sealed record ReportNow
    {
        public static readonly ReportNow Instance = new();
    }

    private sealed record Heartbeat
    {
        public static readonly Heartbeat Instance = new();
    }

    private sealed record PeerGoingAway(GoAwayInfo Info);

    private sealed record LinkClosed(LinkCloseInfo Info);

    protected override void PreStart()
    {
        var self = Self;
        _onStreamsChanged = _ => self.Tell(StreamsChanged.Instance);
        _onGoAway = info => self.Tell(new PeerGoingAway(info));
        _link.Mux.StreamsChanged += _onStreamsChanged;
        _link.Mux.GoAwayReceived += _onGoAway;
        _link.Mux.Closed.PipeTo(self, success: info => new LinkClosed(info), failure: e => new LinkClosed(new LinkCloseInfo(CloseCodes.InternalError, e.Message, false)));
        // Jittered start: links that attached in the same second (a reconnect storm) do not all report in the same tick.
        _fastBeat = true;
        Timers.StartSingleTimer(nameof(Heartbeat), Heartbeat.Instance, TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * HeartbeatInterval.TotalMilliseconds) + HeartbeatInterval);
        Attach();
    }

    protected override void PostStop()
    {
        _link.Mux.StreamsChanged -= _onStreamsChanged;
        _link.Mux.GoAwayReceived -= _onGoAway;
        if (!_link.Mux.IsClosed)
        {
            // Stopped with the node (not because the link ended): tell the agent to go elsewhere.
            _ = _link.Mux.CloseAsync(CloseCodes.GoingAway, "server stopping");
        }
    }

    /// <summary>The next beat: every 5 s while streams are open or the entity has not answered, else the idle beat (one forced report).</summary>
    private void ScheduleBeat()
    {
        _fastBeat = _entity is null || _link.Mux.ActiveStreams > 0;
        var delay = _fastBeat ? HeartbeatInterval : IdleBeat + IdleBeatJitter * (2 * Random.Shared.NextDouble() - 1);
        Timers.StartSingleTimer(nameof(Heartbeat), Heartbeat.Instance, delay);
    }

    /// <summary>Brings the 5 s beat back at once when the link is on its idle beat.</summary>
    private void BeatFast()
    {
        if (!_fastBeat)
        {
            _fastBeat = true;
            _unchangedBeats = 0;
            Timers.StartSingleTimer(nameof(Heartbeat), Heartbeat.Instance, HeartbeatInterval);
        }
    }

    private LinkLoad Load() => new(_link.Mux.ActiveStreams, _link.Mux.StreamsOpened, _link.Mux.BytesIn, _link.Mux.BytesOut, _goingAway || _link.Mux.IsGoingAway);

    private void Attach() => _region.Tell(new AttachLink(_link.SessionId, _link.LinkId, Self, _node, _dataEndpoint, _link.Since, Load(), FirstAttach: !_attachedOnce));

    /// <summary>A WebSocket close reason is at most 123 bytes (RFC 6455 section 5.5).</summary>
    private static string Truncate(string reason) => System.Text.Encoding.UTF8.GetByteCount(reason) <= 120 ? reason : reason[..100] + "...";

    private void Report() => Report(Load());

    /// <summary>Straight to the entity once it has answered (one hop, no shard region lookup); through the region until then.</summary>
    private void Report(LinkLoad load)
    {
        _lastReported = load;
        _unchangedBeats = 0;
        (_entity ?? _region).Tell(new ReportLinkLoad(_link.SessionId, _link.LinkId, load));
    }

    /// <summary>What the entity decides with (streams, going away), or bytes while streams are open (a long transfer's progress).</summary>
    private static bool Changed(LinkLoad? before, LinkLoad now) =>
        before is null
        || before.ActiveStreams != now.ActiveStreams
        || before.StreamsOpened != now.StreamsOpened
        || before.GoingAway != now.GoingAway
        || (now.ActiveStreams > 0 && (before.BytesIn != now.BytesIn || before.BytesOut != now.BytesOut));

    private void CloseIfDrained()
    {
        if (_goingAway && _link.Mux.ActiveStreams == 0 && !_link.Mux.IsClosed)
        {
            _logger.LogInformation("session {SessionId}: link {LinkId} drained; closing", _link.SessionId, _link.LinkId);
            _ = _link.Mux.CloseAsync(CloseCodes.GoingAway, "drained");
        }
    }
}
