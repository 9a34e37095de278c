namespace Connect.Actors.Sessions;

/// <summary>Policy of every session entity; bound from the <c>Connect:Sessions</c> configuration section.</summary>
public sealed record SessionSettings
{
    /// <summary>How long a proxy request waits for an agent link before it gets "no connected agent".</summary>
    public TimeSpan HoldTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>An entity with no link and no waiting request stops after this long (it is re-created on demand).</summary>
    public TimeSpan IdleStopAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Most streams one session may have open at once, over all its links.</summary>
    public int MaxStreamsPerSession { get; init; } = 2000;

    /// <summary>
    /// Most links (not going away) one session may hold; the tunnel endpoint answers a further agent WebSocket with 429
    /// when the entity answers its count within a second, and the entity refuses the link at attach otherwise (close
    /// code 4429). Links that got GOAWAY do not count, so a drain's overlap (new link while the old finishes) never hits it.
    /// </summary>
    public int MaxLinksPerSession { get; init; } = 8;

    /// <summary>Most proxy requests that may wait for a link at once.</summary>
    public int MaxPendingOpens { get; init; } = 1000;

    /// <summary>
    /// How long the entity remembers its answer to a request id, so a copy the broker re-sent that arrives after the
    /// answer gets the same answer again rather than a second grant. At least the broker's ask deadline
    /// (<see cref="HoldTimeout"/> + 10 s), after which no copy is sent.
    /// </summary>
    public TimeSpan DuplicateWindow { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Number of shards; fixed for the life of a cluster (about ten times the largest cluster).</summary>
    public int ShardCount { get; init; } = 100;
}
