using System.Collections.Immutable;

namespace Connect.Actors.Protocol;

// Messages for each node's node-info actor (/user/connect-node-info): the admin API on any node asks every
// member what it holds, and asks one member to drain. Control only: a few small records per request.

/// <summary>Query: what this node holds (links with their streams, entities, draining).</summary>
public sealed record GetNodeInfo : IConnectMessage
{
    public static readonly GetNodeInfo Instance = new();
}

/// <summary>Command: start draining this node (GOAWAY every link; readiness turns 503). Answered at once with <see cref="DrainStarted"/>, not when the drain ends.</summary>
public sealed record DrainNode(string Reason) : IConnectMessage;

/// <summary>The reply to <see cref="DrainNode"/>: the drain runs; <paramref name="AlreadyDraining"/> when an earlier drain was still running.</summary>
public sealed record DrainStarted(string Address, bool AlreadyDraining, int Links, int Streams) : IConnectMessage;

/// <summary>
/// Command: leave the cluster the graceful way, run by the node itself: its coordinated shutdown drains the node
/// while it is still Up (so its region can still hand off and re-register), then hands its entities off, then
/// leaves. A <c>Cluster.Leave</c> issued from another node would make it Exiting first. Answered at once with
/// <see cref="LeaveStarted"/>.
/// </summary>
public sealed record LeaveNode(string Reason) : IConnectMessage;

/// <summary>The reply to <see cref="LeaveNode"/>: the node's coordinated shutdown runs; <paramref name="AlreadyLeaving"/> when it already did.</summary>
public sealed record LeaveStarted(string Address, bool AlreadyLeaving, int Links, int Streams) : IConnectMessage;

/// <summary>One open stream on a link, as the link's multiplexer sees it.</summary>
public sealed record StreamInfo(uint StreamId, string Target, DateTimeOffset OpenedAt, long BytesRead, long BytesWritten);

/// <summary>One link whose socket terminates on the answering node.</summary>
public sealed record LinkInfo(
    string LinkId,
    string SessionId,
    string RemoteAddress,
    DateTimeOffset Since,
    int ActiveStreams,
    long StreamsOpened,
    long BytesIn,
    long BytesOut,
    bool GoingAway,
    ImmutableList<StreamInfo> Streams);

/// <summary>The reply to <see cref="GetNodeInfo"/>; <paramref name="Entities"/> are the session entities hosted here (empty with <paramref name="EntitiesError"/> when the region did not answer).</summary>
public sealed record NodeInfo(
    string Address,
    bool Draining,
    long StreamsResetAtDeadline,
    ImmutableList<LinkInfo> Links,
    ImmutableList<string> Entities,
    int Shards,
    string? EntitiesError,
    int ProxyInFlight = 0) : IConnectMessage
{
    public int ActiveStreams => Links.Sum(l => l.ActiveStreams);
}
