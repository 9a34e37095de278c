namespace Connect.Admin.Contracts;

// The admin API's JSON shapes (camelCase on the wire): the node's admin API (Connect.Host.Admin) writes them and
// connectctl reads them, from this one definition. Scripts read them too: add fields freely, never rename or
// remove one.

/// <summary>GET /v1/nodes: every member as the answering node sees it, with what each node reports it holds.</summary>
public sealed record NodesView(string Self, string? Leader, IReadOnlyList<NodeView> Nodes);

/// <summary>
/// One cluster member. Counts are null when the node did not answer (<see cref="Error"/> says why).
/// <see cref="BytesIn"/>/<see cref="BytesOut"/>: bytes carried so far by the links the node holds now (from/to agents).
/// </summary>
public sealed record NodeView(
    string Address,
    bool Self,
    bool Leader,
    IReadOnlyList<string> Roles,
    string Status,
    bool Reachable,
    int? Links,
    int? Streams,
    int? Sessions,
    int? Entities,
    int? Shards,
    bool? Draining,
    long? StreamsResetAtDeadline,
    bool ReadyToTerminate,
    string? Error,
    long? BytesIn = null,
    long? BytesOut = null);

/// <summary>GET /v1/sessions: one session as its entity knows it.</summary>
public sealed record SessionView(
    string Name,
    string EntityNode,
    string State,
    IReadOnlyList<SessionLinkView> Links,
    int Streams,
    int PendingOpens,
    long StreamsGranted,
    long StreamsRefused);

/// <summary>A link of a session: where its socket is, since when, its load (bytes in = from the agent).</summary>
public sealed record SessionLinkView(string LinkId, string Node, DateTimeOffset Since, int Streams, long StreamsOpened, long BytesIn, long BytesOut, bool GoingAway);

/// <summary>GET /v1/sessions/{name}: the session and its open streams, read from the links' nodes.</summary>
public sealed record SessionDetailView(SessionView Session, IReadOnlyList<StreamView> Streams, IReadOnlyList<string> Errors);

/// <summary>An open stream: its target, age and bytes (in = from the target, through the agent).</summary>
public sealed record StreamView(string LinkId, string Node, uint StreamId, string Target, DateTimeOffset OpenedAt, double AgeSeconds, long BytesIn, long BytesOut);

/// <summary>GET /v1/sessions: one page, sorted by name; <see cref="Next"/> is the <c>after</c> of the next page (null on the last).</summary>
public sealed record SessionsView(IReadOnlyList<SessionView> Sessions, IReadOnlyList<string> Errors, string? Next = null);

/// <summary>GET /v1/sharding: every shard region type and its shards and entities per node.</summary>
public sealed record ShardingView(IReadOnlyList<RegionView> Regions);

public sealed record RegionView(string TypeName, int Shards, int Entities, IReadOnlyList<RegionNodeView> Nodes, IReadOnlyList<string> FailedShards, string? Error);

public sealed record RegionNodeView(string Address, int Shards, int Entities, IReadOnlyDictionary<string, int> EntitiesPerShard);

/// <summary>The answer to an action (drain, leave, down, kick).</summary>
public sealed record ActionResult(string Action, string Target, string Message);

/// <summary>Every error body: what went wrong, in words.</summary>
public sealed record AdminError(string Error);

/// <summary>
/// One line of a node's access log: a finished proxied request or CONNECT tunnel of a session. <see cref="EntryNode"/>
/// took the proxy request; <see cref="LinkNode"/> held the tunnel link that carried it ("-" when no stream opened).
/// </summary>
public sealed record RequestView(
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

/// <summary>GET /v1/sessions/{name}/requests: the session's last requests from every node's access log, oldest first.</summary>
public sealed record SessionRequestsView(string Session, IReadOnlyList<RequestView> Requests, IReadOnlyList<string> Errors);
