namespace Connect.Admin.Contracts;

// The live feed's events (GET /v1/events, text/event-stream). Each SSE message is "event: TYPE" and one line of
// JSON "data:" holding one of these records (camelCase). Like the other contracts: add fields, never rename.

/// <summary>SSE event names of the live feed.</summary>
public static class LiveEventTypes
{
    /// <summary>The cluster now: every node with its counts and bytes, and the first page of sessions (<see cref="LiveSnapshot"/>). Coalesced: a slow client gets only the newest.</summary>
    public const string Snapshot = "snapshot";

    /// <summary>One thing that changed (<see cref="LiveChange"/>): a member, a node's drain, a session. Queued per client, oldest dropped past the bound.</summary>
    public const string Change = "change";

    /// <summary>The watched session (<c>?session=NAME</c>) now (<see cref="LiveSession"/>). Coalesced like the snapshot.</summary>
    public const string Session = "session";

    /// <summary>Changes this client missed because it read too slowly (<see cref="LiveDropped"/>).</summary>
    public const string Dropped = "dropped";
}

/// <summary>The cluster as the answering node sampled it at <paramref name="At"/>.</summary>
public sealed record LiveSnapshot(DateTimeOffset At, NodesView Nodes, SessionsView Sessions);

/// <summary>
/// One change: <paramref name="Kind"/> is member (first sight), status, unreachable, reachable, removed, draining,
/// safe-to-stop, session, session-state, session-links or session-gone; <paramref name="Subject"/> the member
/// address or session name; <paramref name="Detail"/> the new value in words.
/// </summary>
public sealed record LiveChange(DateTimeOffset At, string Kind, string Subject, string Detail);

/// <summary>The watched session: its detail (null while the cluster does not know it) and its last proxy requests cluster-wide.</summary>
public sealed record LiveSession(DateTimeOffset At, string Name, SessionDetailView? Detail, IReadOnlyList<RequestView> Requests, IReadOnlyList<string> Errors);

/// <summary>How many changes were dropped for this client since the last event it got.</summary>
public sealed record LiveDropped(long Count);
