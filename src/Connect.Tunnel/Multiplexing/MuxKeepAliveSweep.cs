namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// One keep-alive timer for many multiplexers (a node's agent links): every <see cref="Tick"/> it lets the links whose
/// interval has come round send their PING or close on silence, with the same per-link schedule, close code and
/// timeout as a link's own loop. Ten thousand idle links then cost one timer tick a second and a burst of PINGs
/// instead of 667 timers firing apart (each a thread-pool wake-up), and no timer object per link.
/// </summary>
/// <remarks>
/// Each link is filed under the tick at which it is next due (a timing wheel keyed by the sweep's clock), so a tick
/// visits only the links due then (1/15 of them with the 15 s interval), not every link: walking all 10,000 links
/// every second was 7 % of an idle node's CPU (docs/SCALING.md "Idle CPU: the profile"). A tick that comes late
/// visits every slot it missed. A link's PING leaves up to one tick later than its own loop would send it: a tick of
/// 1 s against an interval of 15 s and a timeout of 45 s. Each link reads its own options' clock to decide; the
/// sweep's <see cref="TimeProvider"/> paces the ticks and numbers the slots (tests move both).
/// </remarks>
public sealed class MuxKeepAliveSweep : IAsyncDisposable
{
    /// <summary>The default tick: small against the protocol's 15 s PING interval, large against the cost of a walk.</summary>
    public static readonly TimeSpan DefaultTick = TimeSpan.FromSeconds(1);

    private readonly HashSet<MuxKeepAlive> _members = new(ReferenceEqualityComparer.Instance);
    // Slot number (ticks since the sweep started, on its clock) -> the links due then. Guarded by _members.
    private readonly Dictionary<long, List<MuxKeepAlive>> _wheel = new();
    private readonly List<MuxKeepAlive> _walk = new();
    private readonly List<(MuxKeepAlive Member, TimeSpan DueIn)> _refile = new();
    private readonly long _started;
    private long _lastSlot;
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _timeProvider;
    private readonly PeriodicTimer _timer;
    private readonly Task _loop;
    private long _sweeps;
    private long _visits;

    public MuxKeepAliveSweep(TimeProvider? timeProvider = null, TimeSpan? tick = null)
    {
        _timeProvider = timeProvider ?? TimeProvider.System;
        Tick = tick ?? DefaultTick;
        if (Tick <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(tick), Tick, "the sweep's tick must be positive");
        }
        // Created here, not in the loop: time moved right after construction (a test's fake clock) already counts.
        _started = _timeProvider.GetTimestamp();
        _timer = new PeriodicTimer(Tick, _timeProvider);
        _loop = RunAsync();
    }

    public TimeSpan Tick { get; }

    /// <summary>Links in the sweep now.</summary>
    public int Count { get { lock (_members) { return _members.Count; } } }

    /// <summary>Walks done so far (one per tick).</summary>
    public long Sweeps => Interlocked.Read(ref _sweeps);

    /// <summary>Links visited so far, over all walks (each visit a link whose PING was due, or nearly).</summary>
    public long Visits => Interlocked.Read(ref _visits);

    internal void Add(MuxKeepAlive member)
    {
        var dueIn = member.DueIn;
        lock (_members)
        {
            if (_members.Add(member))
            {
                File(member, dueIn);
            }
        }
    }

    /// <summary>The link leaves at once; its entry in the wheel is dropped when its slot comes (it is no member then).</summary>
    internal void Remove(MuxKeepAlive member)
    {
        lock (_members)
        {
            _members.Remove(member);
        }
    }

    // Rounded, not floored: a timer that fires a hair before its tick (coarse timer clock) still walks that tick's slot.
    private long CurrentSlot() => (_timeProvider.GetElapsedTime(_started).Ticks + Tick.Ticks / 2) / Tick.Ticks;

    /// <summary>Files a member under the first slot at or after its due time, always after the last slot walked.</summary>
    private void File(MuxKeepAlive member, TimeSpan dueIn)
    {
        var ticks = Math.Max(1, (long)Math.Ceiling(dueIn.Ticks / (double)Tick.Ticks));
        var slot = Math.Max(CurrentSlot(), _lastSlot) + ticks;
        if (!_wheel.TryGetValue(slot, out var due))
        {
            _wheel[slot] = due = new List<MuxKeepAlive>();
        }
        due.Add(member);
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
        // Take the links of every slot up to now (more than one when the tick came late), then beat them outside the
        // lock: a PING send or a close may re-enter Remove (and a new link may Add) while the walk runs.
        lock (_members)
        {
            var now = CurrentSlot();
            if (now - _lastSlot <= _wheel.Count)
            {
                for (var slot = _lastSlot + 1; slot <= now; slot++)
                {
                    Take(slot);
                }
            }
            else
            {
                // A long jump (a fake clock in a test, a suspended host): visit the filed slots, not every slot between.
                foreach (var slot in _wheel.Keys.Where(k => k <= now).ToList())
                {
                    Take(slot);
                }
            }
            _lastSlot = Math.Max(_lastSlot, now);
        }
        foreach (var member in _walk)
        {
            try
            {
                if (member.OnSweep() is { } dueIn)
                {
                    _refile.Add((member, dueIn));
                }
            }
            catch (Exception)
            {
                // One link's failure (its close threw) must not stop the keep-alive of every other link; that link's
                // own read loop ends it.
            }
        }
        lock (_members)
        {
            foreach (var (member, dueIn) in _refile)
            {
                if (_members.Contains(member))
                {
                    File(member, dueIn);
                }
            }
        }
        Interlocked.Add(ref _visits, _walk.Count);
        _walk.Clear();
        _refile.Clear();
        Interlocked.Increment(ref _sweeps);
    }

    private void Take(long slot)
    {
        if (_wheel.Remove(slot, out var due))
        {
            foreach (var member in due)
            {
                if (_members.Contains(member))
                {
                    _walk.Add(member);
                }
            }
        }
    }
}
