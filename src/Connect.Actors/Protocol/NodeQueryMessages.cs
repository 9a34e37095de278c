using System.Collections.Immutable;

namespace Connect.Actors.Protocol;

// The admin API's questions to each node's node-info actor, sized for nodes with tens of thousands of links: a node
// answers with counts, and details come in pages or for one session. Every reply stays far below Akka.Remote's
// maximum frame size (256,000 bytes here), whatever the node holds; a reply over it would be dropped with only a log
// line and the asker would see "no answer" (issue 16: one NodeInfo listing 3,000 links was).

/// <summary>Query: what this node holds, as counts only (one small reply however many links the node holds).</summary>
public sealed record GetNodeSummary : IConnectMessage
{
    public static readonly GetNodeSummary Instance = new();
}

/// <summary>
/// The reply to <see cref="GetNodeSummary"/>. <paramref name="ReadyToTerminate"/> is decided by the node itself
/// (no links, no streams, no proxy request in flight), so the deploy gate does not depend on what another node
/// makes of a list. <paramref name="Entities"/> and <paramref name="Shards"/> are -1 with
/// <paramref name="EntitiesError"/> when the local shard region did not answer. <paramref name="BytesIn"/> and
/// <paramref name="BytesOut"/> are the bytes carried by the links held now (the live charts' bytes per second);
/// added later, so they come last with a default (0 from an older node).
/// </summary>
public sealed record NodeSummary(
    string Address,
    bool Draining,
    long StreamsResetAtDeadline,
    int Links,
    int Streams,
    int Sessions,
    int Entities,
    int Shards,
    string? EntitiesError,
    int ProxyInFlight,
    bool ReadyToTerminate,
    long BytesIn = 0,
    long BytesOut = 0) : IConnectMessage;

/// <summary>
/// Query: the sessions this node knows (entities it hosts or links it holds) whose names sort after
/// <paramref name="After"/> (ordinal), at most <paramref name="Limit"/> of them, with their links (no streams).
/// </summary>
public sealed record GetNodeSessions(string? After, int Limit) : IConnectMessage
{
    /// <summary>The most sessions one page carries; the node also stops at 150 links (NodeInfoActor.MaxLinksPerPage), so a page stays under ~80 KB.</summary>
    public const int MaxLimit = 200;
}

/// <summary>One session as one node knows it: whether its entity runs here, and the links of it whose sockets end here.</summary>
public sealed record NodeSessionEntry(string SessionId, bool EntityHere, ImmutableList<LinkInfo> Links);

/// <summary>
/// The reply to <see cref="GetNodeSessions"/>, sorted by session name. <paramref name="More"/> says the node knows
/// more sessions after the last one listed: a merged page must not go past the last name of any node that has more.
/// </summary>
public sealed record NodeSessionsPage(string Address, ImmutableList<NodeSessionEntry> Sessions, bool More, string? EntitiesError) : IConnectMessage;

/// <summary>Query: one session on this node: whether its entity runs here, and its links here with their open streams.</summary>
public sealed record GetNodeSession(string SessionId) : IConnectMessage
{
    /// <summary>The most streams one reply lists (a session may hold 2,000; 200 of the longest targets are ~72 KB); the rest are counted in <see cref="NodeSession.StreamsOmitted"/>.</summary>
    public const int MaxStreams = 200;
}

/// <summary>The reply to <see cref="GetNodeSession"/>; streams beyond <see cref="GetNodeSession.MaxStreams"/> (the newest) are counted, not listed.</summary>
public sealed record NodeSession(string Address, string SessionId, bool EntityHere, ImmutableList<LinkInfo> Links, int StreamsOmitted, string? EntitiesError) : IConnectMessage;

/// <summary>Query: this node's last access-log entries of one session (the entry node's side of "what did it just do").</summary>
public sealed record GetNodeRequests(string SessionId, int Max) : IConnectMessage
{
    /// <summary>The most entries one reply carries: ~300 bytes each at worst, so a reply stays under ~30 KB.</summary>
    public const int MaxEntries = 100;
}

/// <summary>One finished proxy request or CONNECT tunnel as the node that took it logged it (event 2010).</summary>
public sealed record RequestRecord(
    DateTimeOffset At,
    string SessionId,
    string EntryNode,
    string LinkNode,
    string Method,
    string Target,
    int Status,
    long BytesUp,
    long BytesDown,
    double DurationMs,
    string? Error,
    string? Detail);

/// <summary>The reply to <see cref="GetNodeRequests"/>: oldest first.</summary>
public sealed record NodeRequests(string Address, ImmutableList<RequestRecord> Requests) : IConnectMessage;

/// <summary>
/// Query from a stream broker whose session entity does not answer (its node crashed or froze, not yet downed): which
/// links of the session this node holds that can take a stream now (registered, not going away, not closed, not in
/// <paramref name="Exclude"/>).
/// </summary>
public sealed record FindSessionLinks(string SessionId, ImmutableHashSet<string> Exclude) : IConnectMessage;

/// <summary>The reply to <see cref="FindSessionLinks"/>: each usable link as the grant that would name it, newest first.</summary>
public sealed record SessionLinksFound(string Address, string SessionId, ImmutableList<StreamGranted> Links) : IConnectMessage;
