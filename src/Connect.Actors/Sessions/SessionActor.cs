using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Connect.Actors.Protocol;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Logging;

namespace Connect.Actors.Sessions;

/// <summary>
/// The sharded entity for one tunnel session, and the authority for it: which links are attached (each on
/// whatever node the agent reached), which link each new stream goes to, the session's limits and counters.
/// It decides; it never touches a byte. Requests that arrive while no usable link is attached wait here,
/// bounded by <see cref="SessionSettings.HoldTimeout"/>, and are granted as soon as one attaches.
/// </summary>
public sealed class SessionActor : ReceiveActor, IWithTimers
{
    private readonly string _sessionId;
    private readonly SessionSettings _settings;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _node;
    private readonly Cluster _cluster;
    private OpenRequests _requests = OpenRequests.Empty;
    private SessionState _state = SessionState.Empty;
    private bool _active; // which behaviour is current: Active (true) or AwaitingLink

    public SessionActor(string sessionId, SessionSettings settings, ILoggerFactory loggers, TimeProvider time)
    {
        _sessionId = sessionId;
        _settings = settings;
        _logger = loggers.CreateLogger<SessionActor>();
        _time = time;
        _cluster = Cluster.Get(Context.System);
        _node = _cluster.SelfAddress.ToString();
        // Become, not the handlers registered here: Akka keeps the constructor's behaviour at the bottom of the stack for
        // the actor's life, so an entity that became Active held two sets of handlers (~1 KiB per idle session).
        Become(AwaitingLink);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string sessionId, SessionSettings settings, ILoggerFactory loggers, TimeProvider time) =>
        Akka.Actor.Props.Create(() => new SessionActor(sessionId, settings, loggers, time));

    private sealed record ExpirePending
    {
        public static readonly ExpirePending Instance = new();
    }

    private sealed record IdleCheck
    {
        public static readonly IdleCheck Instance = new();
    }

    protected override void PreStart()
    {
        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["SessionId"] = _sessionId, ["Node"] = _node });
        _logger.LogDebug("session {SessionId}: entity started on {Node}", _sessionId, _node);
        ScheduleIdleCheck();
    }

    protected override void PostStop()
    {
        // With "entity started" this bounds the entity's life in the log: a partition test checks from these two lines
        // that one session never has two live entities on different nodes.
        _logger.LogDebug("session {SessionId}: entity stopped on {Node}", _sessionId, _node);
    }

    /// <summary>No usable link: stream requests wait for one.</summary>
    private void AwaitingLink()
    {
        Common();
        Receive<OpenStream>(open => OnOpen(open, Sender, Hold));
    }

    /// <summary>At least one usable link: stream requests are granted at once.</summary>
    private void Active()
    {
        Common();
        Receive<OpenStream>(open => OnOpen(open, Sender, Grant));
    }

    private void Common()
    {
        Receive<AttachLink>(attach =>
        {
            if (SessionDecisions.AttachRefusal(_state, attach, _settings.MaxLinksPerSession) is { } refusal)
            {
                _logger.LogWarning("session {SessionId}: link {LinkId} on {LinkNode} refused: {Reason}", _sessionId, attach.LinkId, attach.Node, refusal);
                Sender.Tell(new LinkRefused(_sessionId, attach.LinkId, refusal));
                return;
            }
            var known = _state.Links.ContainsKey(attach.LinkId);
            _state = SessionDecisions.Attach(_state, attach);
            Context.Watch(attach.Link);
            Sender.Tell(new LinkAttached(_sessionId, attach.LinkId));
            if (!known)
            {
                _logger.LogInformation("session {SessionId}: link {LinkId} attached on {LinkNode} ({LinkCount} links)", _sessionId, attach.LinkId, attach.Node, _state.Links.Count);
            }
            StateChanged();
        });
        Receive<DetachLink>(detach =>
        {
            if (_state.Links.TryGetValue(detach.LinkId, out var entry))
            {
                Context.Unwatch(entry.Link);
                _state = SessionDecisions.Detach(_state, detach.LinkId);
                _logger.LogInformation("session {SessionId}: link {LinkId} detached: {Reason}", _sessionId, detach.LinkId, detach.Reason);
                StateChanged();
            }
        });
        Receive<Terminated>(terminated =>
        {
            var before = _state.Links.Count;
            _state = SessionDecisions.DetachActor(_state, terminated.ActorRef);
            if (_state.Links.Count != before)
            {
                _logger.LogInformation("session {SessionId}: link actor {LinkActor} terminated; {LinkCount} links left", _sessionId, terminated.ActorRef.Path, _state.Links.Count);
                StateChanged();
            }
        });
        Receive<ReportLinkLoad>(report =>
        {
            if (!_state.Links.ContainsKey(report.LinkId))
            {
                Sender.Tell(new LinkUnknown(_sessionId, report.LinkId));
                return;
            }
            _state = SessionDecisions.Report(_state, report.LinkId, report.Load);
            StateChanged();
        });
        Receive<MoveSessionLinks>(move =>
        {
            _logger.LogInformation("session {SessionId}: moving {LinkCount} links: {Reason}", _sessionId, _state.Links.Count, move.Reason);
            foreach (var link in _state.Links.Values)
            {
                link.Link.Tell(new GoAwayLink(GoAwayCode.Kicked, move.Reason));
            }
            Sender.Tell(Snapshot());
        });
        Receive<GetSession>(_ => Sender.Tell(Snapshot()));
        Receive<ExpirePending>(_ => ExpireDue());
        Receive<IdleCheck>(_ =>
        {
            if (_state.Links.IsEmpty && _requests.Pending.IsEmpty)
            {
                _logger.LogDebug("session {SessionId}: no links and no requests for {IdleStopAfter}; stopping the entity", _sessionId, _settings.IdleStopAfter);
                Context.Parent.Tell(new Passivate(PoisonPill.Instance));
            }
        });
    }

    /// <summary>
    /// A copy the broker re-sent (same request id) joins the waiting request or gets the earlier answer again, so
    /// it never counts against <see cref="SessionSettings.MaxPendingOpens"/>, is never granted twice (which would
    /// skew the link loads that pick a link) and never refused twice (one refusal counted and logged).
    /// </summary>
    private void OnOpen(OpenStream open, IActorRef replyTo, Action<OpenStream, IActorRef> decide)
    {
        switch (_requests.Classify(open, out var answer))
        {
            case OpenRequestKind.CopyOfPending:
                _requests = _requests.Join(open, replyTo);
                _logger.LogDebug("session {SessionId}: request {RequestId} re-sent by {FromNode}; it keeps waiting once", _sessionId, open.RequestId, open.FromNode);
                break;
            case OpenRequestKind.CopyOfAnswered:
                _logger.LogDebug("session {SessionId}: request {RequestId} re-sent by {FromNode}; answered again as before", _sessionId, open.RequestId, open.FromNode);
                replyTo.Tell(answer);
                break;
            default:
                decide(open, replyTo);
                break;
        }
    }

    private void Grant(OpenStream open, IActorRef replyTo)
    {
        if (_state.EstimatedStreams >= _settings.MaxStreamsPerSession)
        {
            Refuse(open, replyTo, StreamRefusal.TooManyStreams, $"session '{_sessionId}' has reached its limit of {_settings.MaxStreamsPerSession} open streams");
            return;
        }
        var link = SessionDecisions.PickLink(_state, open.ExcludeLinks, UnreachableNodes());
        if (link is null)
        {
            Hold(open, replyTo);
            return;
        }
        _state = SessionDecisions.Granted(_state, link);
        Answer(open, replyTo, new StreamGranted(_sessionId, link.LinkId, link.Link, link.Node, link.DataEndpoint));
    }

    private void Hold(OpenStream open, IActorRef replyTo)
    {
        if (_requests.Pending.Count >= _settings.MaxPendingOpens)
        {
            Refuse(open, replyTo, StreamRefusal.NoTunnel, $"session '{_sessionId}' has no connected agent and {_requests.Pending.Count} requests already waiting");
            return;
        }
        _requests = _requests.Hold(open, replyTo, _time.GetUtcNow() + _settings.HoldTimeout);
        if (!Timers.IsTimerActive(nameof(ExpirePending)))
        {
            Timers.StartPeriodicTimer(nameof(ExpirePending), ExpirePending.Instance, TimeSpan.FromMilliseconds(200));
        }
    }

    private void Refuse(OpenStream open, IActorRef replyTo, StreamRefusal reason, string message)
    {
        _state = _state with { StreamsRefused = _state.StreamsRefused + 1 };
        _logger.LogWarning("session {SessionId}: stream refused ({Refusal}): {Reason}", _sessionId, reason, message);
        Answer(open, replyTo, new StreamRefused(_sessionId, reason, message));
    }

    private void Answer(OpenStream open, IActorRef replyTo, IConnectMessage answer)
    {
        _requests = _requests.Answer(open, answer, _time.GetUtcNow(), _settings.DuplicateWindow);
        replyTo.Tell(answer);
    }

    /// <summary>Members this node's failure detector sees as unreachable (the cluster's current view; empty almost always).</summary>
    private IReadOnlySet<string>? UnreachableNodes()
    {
        var unreachable = _cluster.State.Unreachable;
        return unreachable.Count == 0 ? null : unreachable.Select(m => m.Address.ToString()).ToHashSet(StringComparer.Ordinal);
    }

    private void ExpireDue()
    {
        var now = _time.GetUtcNow();
        _requests = _requests.Expire(now, out var expired);
        foreach (var request in expired)
        {
            var why = _state.Links.IsEmpty ? "has no connected agent"
                : _state.Links.Values.All(l => l.Load.GoingAway) ? "has no link that can take streams (all are going away)"
                : "has no link this request could use (its other links failed to open it or are going away)";
            Refuse(request.Request, request.ReplyTo, StreamRefusal.NoTunnel, $"session '{_sessionId}' {why} (waited {_settings.HoldTimeout.TotalSeconds:0.#} s)");
        }
        _requests = _requests.Prune(now - _settings.DuplicateWindow);
        if (_requests.Pending.IsEmpty)
        {
            Timers.Cancel(nameof(ExpirePending));
            ScheduleIdleCheck();
        }
    }

    private void StateChanged()
    {
        var usable = SessionDecisions.PickLink(_state, ImmutableHashSet<string>.Empty) is not null;
        if (usable != _active)
        {
            // Only when the behaviour flips: a ReceiveActor's Become builds its whole handler table again (reflection,
            // MakeGenericType), ~60 us, and every load report ends here. Profiled at 10,000 idle links, Become on each
            // of their ~170 reports a second was 15 % of the node's idle CPU (docs/SCALING.md "Idle CPU: the profile").
            _active = usable;
            Become(usable ? Active : AwaitingLink);
        }
        if (usable)
        {
            // Grant what waited; a request whose only candidates are excluded keeps waiting.
            _requests = _requests.WithoutPending(out var waiting);
            foreach (var pending in waiting)
            {
                if (SessionDecisions.PickLink(_state, pending.Request.ExcludeLinks) is null)
                {
                    _requests = _requests with { Pending = _requests.Pending.Add(pending) };
                }
                else
                {
                    Grant(pending.Request, pending.ReplyTo);
                }
            }
        }
        if (_state.Links.IsEmpty)
        {
            ScheduleIdleCheck();
        }
    }

    private void ScheduleIdleCheck() => Timers.StartSingleTimer(nameof(IdleCheck), IdleCheck.Instance, _settings.IdleStopAfter);

    private SessionSnapshot Snapshot() => new(
        _sessionId,
        _node,
        SessionDecisions.Activity(_state),
        _state.Links.Values.OrderBy(l => l.Since).Select(l => new LinkSnapshot(l.LinkId, l.Node, l.Since, l.Load)).ToImmutableList(),
        _requests.Pending.Count,
        _state.StreamsGranted,
        _state.StreamsRefused);
}
