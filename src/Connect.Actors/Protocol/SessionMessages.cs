using System.Collections.Immutable;
using Akka.Actor;

namespace Connect.Actors.Protocol;

/// <summary>Every message for a session entity names its session; sharding routes on it.</summary>
public interface IWithSessionId
{
    string SessionId { get; }
}

// ----- commands to the session entity -----

/// <summary>
/// A tunnel link (a WebSocket on some node) joins its session; sent again whenever the entity may have moved.
/// <paramref name="FirstAttach"/> is true until the link has been attached once: only such a link may be refused for
/// the session's link limit (a link re-attaching after a hand-off or crash already holds streams and is never refused;
/// false from a node that predates the flag, so an older node's links are never refused here).
/// </summary>
public sealed record AttachLink(string SessionId, string LinkId, IActorRef Link, string Node, string DataEndpoint, DateTimeOffset Since, LinkLoad Load, bool FirstAttach = false) : IWithSessionId, IConnectMessage;

/// <summary>A link closed; the entity forgets it (it also watches the link actor, in case this never arrives).</summary>
public sealed record DetachLink(string SessionId, string LinkId, string Reason) : IWithSessionId, IConnectMessage;

/// <summary>A link's current load, sent when its stream count changes and periodically.</summary>
public sealed record ReportLinkLoad(string SessionId, string LinkId, LinkLoad Load) : IWithSessionId, IConnectMessage;

/// <summary>
/// A proxy request asks for a stream to <paramref name="Target"/>; links in <paramref name="ExcludeLinks"/> just failed for it.
/// <paramref name="RequestId"/> is the same on every copy the broker re-sends, so the entity holds, counts and grants
/// it once (null from a node that predates ids: every copy is then a request of its own).
/// </summary>
public sealed record OpenStream(string SessionId, string Target, string FromNode, ImmutableHashSet<string> ExcludeLinks, string? RequestId = null) : IWithSessionId, IConnectMessage;

/// <summary>Ask every link of the session to move (GOAWAY): the agent reconnects, open streams finish.</summary>
public sealed record MoveSessionLinks(string SessionId, string Reason) : IWithSessionId, IConnectMessage;

/// <summary>Query: the session's state as the entity knows it.</summary>
public sealed record GetSession(string SessionId) : IWithSessionId, IConnectMessage;

// ----- replies from the session entity -----

public sealed record LinkAttached(string SessionId, string LinkId) : IConnectMessage;

/// <summary>
/// The entity refuses a new link: the session already holds <see cref="Sessions.SessionSettings.MaxLinksPerSession"/>
/// links. The link closes with <c>CloseCodes.TooManyLinks</c> and <paramref name="Reason"/>.
/// </summary>
public sealed record LinkRefused(string SessionId, string LinkId, string Reason) : IConnectMessage;

/// <summary>The entity does not know this link (it was re-created elsewhere); the link must attach again.</summary>
public sealed record LinkUnknown(string SessionId, string LinkId) : IConnectMessage;

/// <summary>Open the stream on this link; the link lives on <paramref name="LinkNode"/>, whose node channel listens at <paramref name="DataEndpoint"/> (host:port).</summary>
public sealed record StreamGranted(string SessionId, string LinkId, IActorRef Link, string LinkNode, string DataEndpoint) : IConnectMessage;

/// <summary>No stream for now, and why.</summary>
public sealed record StreamRefused(string SessionId, StreamRefusal Reason, string Message) : IConnectMessage;

public enum StreamRefusal
{
    /// <summary>No agent link was attached within the hold time.</summary>
    NoTunnel,
    /// <summary>The session's stream limit is reached.</summary>
    TooManyStreams,
}

// ----- state shapes -----

/// <summary>What a link reports about itself.</summary>
public sealed record LinkLoad(int ActiveStreams, long StreamsOpened, long BytesIn, long BytesOut, bool GoingAway)
{
    public static readonly LinkLoad Idle = new(0, 0, 0, 0, false);
}

public enum SessionActivity
{
    /// <summary>No agent link attached.</summary>
    Disconnected,
    /// <summary>Links attached, no stream open.</summary>
    Idle,
    /// <summary>At least one stream open.</summary>
    Busy,
    /// <summary>Every link is going away (GOAWAY) and no replacement has attached yet.</summary>
    Draining,
}

public sealed record LinkSnapshot(string LinkId, string Node, DateTimeOffset Since, LinkLoad Load);

/// <summary>The reply to <see cref="GetSession"/>.</summary>
public sealed record SessionSnapshot(
    string SessionId,
    string EntityNode,
    SessionActivity State,
    ImmutableList<LinkSnapshot> Links,
    int PendingOpens,
    long StreamsGranted,
    long StreamsRefused) : IConnectMessage;
