namespace Connect.Ctl;

// The admin API's JSON as connectctl reads it (the server's Connect.Host.Admin.AdminModels; fields are only ever added).

public sealed record NodesView(string Self, string? Leader, List<NodeView> Nodes);

public sealed record NodeView(
    string Address, bool Self, bool Leader, List<string> Roles, string Status, bool Reachable,
    int? Links, int? Streams, int? Sessions, int? Entities, int? Shards, bool? Draining, long? StreamsResetAtDeadline,
    bool ReadyToTerminate, string? Error);

public sealed record SessionsView(List<SessionView> Sessions, List<string> Errors, string? Next = null);

public sealed record SessionView(string Name, string EntityNode, string State, List<SessionLinkView> Links, int Streams, int PendingOpens, long StreamsGranted, long StreamsRefused);

public sealed record SessionLinkView(string LinkId, string Node, DateTimeOffset Since, int Streams, long StreamsOpened, long BytesIn, long BytesOut, bool GoingAway);

public sealed record SessionDetailView(SessionView Session, List<StreamView> Streams, List<string> Errors);

public sealed record StreamView(string LinkId, string Node, uint StreamId, string Target, DateTimeOffset OpenedAt, double AgeSeconds, long BytesIn, long BytesOut);

public sealed record ShardingView(List<RegionView> Regions);

public sealed record RegionView(string TypeName, int Shards, int Entities, List<RegionNodeView> Nodes, List<string> FailedShards, string? Error);

public sealed record RegionNodeView(string Address, int Shards, int Entities, Dictionary<string, int> EntitiesPerShard);

public sealed record ActionResult(string Action, string Target, string Message);
