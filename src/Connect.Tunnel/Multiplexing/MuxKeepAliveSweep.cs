namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// One keep-alive timer for many multiplexers (a node's agent links): every <see cref="Tick"/> it walks the links
/// that joined it and lets each send the PING that is due or close on silence, with the same per-link schedule,
/// close code and timeout as a link's own loop. Ten thousand idle links then cost one timer tick a second and a
/// burst of PINGs instead of 667 timers firing apart (each a thread-pool wake-up), and no timer object per link.
/// </summary>
/// <remarks>
/// A link's PING leaves up to one tick later than its own loop would send it: a tick of 1 s against an interval of
/// 15 s and a timeout of 45 s. Each link reads its own options' clock; the sweep's <see cref="TimeProvider"/> only
/// paces the walks (tests move both).
/// </remarks>
public sealed class MuxKeepAliveSweep : IAsyncDisposable
{
    /// <summary>The default tick: small against the protocol's 15 s PING interval, large against the cost of a walk.</summary>
    public static readonly TimeSpan DefaultTick = TimeSpan.FromSeconds(1);

    private readonly HashSet<MuxKeepAlive> _members = new(ReferenceEqualityComparer.Instance);
    private readonly List<MuxKeepAlive> _walk = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _timeProvider;
    private readonly PeriodicTimer _timer;
    private readonly Task _loop;
    private long _sweeps;

    public MuxKeepAliveSweep(TimeProvider? timeProvider = null, TimeSpan? tick = null)
    {
        _timeProvider = timeProvider ?? TimeProvider.System;
        Tick = tick ?? DefaultTick;
        if (Tick <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(tick), Tick, "the sweep's tick must be positive");
        }
        // Created here, not in the loop: time moved right after construction (a test's fake clock) already counts.
        _timer = new PeriodicTimer(Tick, _timeProvider);
        _loop = RunAsync();
    }

    public TimeSpan Tick { get; }

    /// <summary>Links in the sweep now.</summary>
    public int Count { get { lock (_members) { return _members.Count; } } }

    /// <summary>Walks done so far (one per tick).</summary>
    public long Sweeps => Interlocked.Read(ref _sweeps);

    internal void Add(MuxKeepAlive member)
    {
        lock (_members)
        {
            _members.Add(member);
        }
    }

    internal void Remove(MuxKeepAlive member)
    {
        lock (_members)
        {
            _members.Remove(member);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        try
        {
            while (await _timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                SweepOnce();
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
        finally
        {
            _timer.Dispose();
        }
    }

    private void SweepOnce()
    {
        // Walk a copy: a PING send or a close may re-enter Remove (and a new link may Add) while the walk runs.
        lock (_members)
        {
            _walk.AddRange(_members);
        }
        foreach (var member in _walk)
        {
            try
            {
                member.OnSweep();
            }
            catch (Exception)
            {
                // One link's failure (its close threw) must not stop the keep-alive of every other link; that link's
                // own read loop ends it.
            }
        }
        _walk.Clear();
        Interlocked.Increment(ref _sweeps);
    }
}
