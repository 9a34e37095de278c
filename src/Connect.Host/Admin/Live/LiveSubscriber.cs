using Connect.Admin.Contracts;

namespace Connect.Host.Admin.Live;

/// <summary>
/// One client of the live feed, with bounded memory whatever its speed. Snapshots (and the watched session) are
/// coalesced: one slot each, a newer one replaces the one not yet sent. Changes queue up to
/// <see cref="MaxQueuedChanges"/>; past that the oldest is dropped and counted, and the client is told how many it
/// missed (a <see cref="LiveEventTypes.Dropped"/> event) before the next ones. A slow browser therefore never
/// holds the feed back and never makes the node buffer more than one snapshot and a few hundred lines for it.
/// </summary>
public sealed class LiveSubscriber(string? session)
{
    /// <summary>Changes kept for a client that reads slower than they come.</summary>
    public const int MaxQueuedChanges = 256;

    private readonly object _sync = new();
    private readonly Queue<LiveEvent> _changes = new();
    private readonly SemaphoreSlim _ready = new(0, 1);
    private LiveEvent? _snapshot;
    private LiveEvent? _session;
    private long _dropped;

    /// <summary>The session this client watches (<c>?session=</c>), or null.</summary>
    public string? Session { get; } = session;

    /// <summary>Changes dropped for this client since it connected (for tests and the log).</summary>
    public long DroppedTotal { get; private set; }

    public void Publish(LiveEvent e)
    {
        lock (_sync)
        {
            switch (e.Type)
            {
                case LiveEventTypes.Snapshot:
                    _snapshot = e;
                    break;
                case LiveEventTypes.Session:
                    _session = e;
                    break;
                default:
                    if (_changes.Count >= MaxQueuedChanges)
                    {
                        _changes.Dequeue();
                        _dropped++;
                        DroppedTotal++;
                    }
                    _changes.Enqueue(e);
                    break;
            }
        }
        if (_ready.CurrentCount == 0)
        {
            try
            {
                _ready.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another publisher signalled first: one wake-up is enough, the taker empties everything.
            }
        }
    }

    /// <summary>Waits until something is pending, then takes all of it: the dropped notice, the changes in order, then the newest snapshot and session.</summary>
    public async Task<IReadOnlyList<LiveEvent>> TakeAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        await _ready.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        lock (_sync)
        {
            var taken = new List<LiveEvent>(_changes.Count + 3);
            if (_dropped > 0)
            {
                taken.Add(new LiveEvent(LiveEventTypes.Dropped, $"{{\"count\":{_dropped}}}"));
                _dropped = 0;
            }
            taken.AddRange(_changes);
            _changes.Clear();
            if (_snapshot is not null)
            {
                taken.Add(_snapshot);
                _snapshot = null;
            }
            if (_session is not null)
            {
                taken.Add(_session);
                _session = null;
            }
            return taken;
        }
    }
}
