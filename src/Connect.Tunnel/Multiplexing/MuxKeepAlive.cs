namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// Keep-alive of one multiplexer: a PING every <see cref="MuxOptions.KeepAliveInterval"/>, and a verdict when
/// nothing at all has arrived from the peer for <see cref="MuxOptions.KeepAliveTimeout"/> (any frame counts, not
/// only PONG, so a busy link never needs a PONG in time). Deadlines run on the options' <see cref="TimeProvider"/>.
/// Driven by its own timer, or by a node-wide <see cref="MuxKeepAliveSweep"/> when the options name one (same
/// schedule: silence is judged and a PING sent at every interval since the link started).
/// </summary>
internal sealed class MuxKeepAlive(MuxOptions options, Action<ulong> sendPing, Action<TimeSpan> onSilence)
{
    private long _lastReceivedTicks = options.TimeProvider.GetTimestamp();
    private long _lastPeerPingTicks;
    private long _pingsSent;
    private long _pingsSkipped;
    private long _peerPings;
    private long _nextBeat;
    private ulong _sequence;
    private int _ended;

    /// <summary>Notes that bytes arrived from the peer (called by the read loop on every receive).</summary>
    public void Touch() => Volatile.Write(ref _lastReceivedTicks, options.TimeProvider.GetTimestamp());

    /// <summary>Notes that the peer sent a PING (called by the read loop), for <see cref="MuxOptions.SkipPingWhilePeerPings"/>.</summary>
    public void PeerPinged()
    {
        Interlocked.Increment(ref _peerPings);
        if (options.SkipPingWhilePeerPings)
        {
            Volatile.Write(ref _lastPeerPingTicks, options.TimeProvider.GetTimestamp());
        }
    }

    /// <summary>PINGs this side sent and skipped (the peer was pinging); for tests and the scale notes.</summary>
    public long PingsSent => Interlocked.Read(ref _pingsSent);

    public long PingsSkipped => Interlocked.Read(ref _pingsSkipped);

    /// <summary>PINGs the peer sent (each answered with a PONG).</summary>
    public long PeerPings => Interlocked.Read(ref _peerPings);

    /// <summary>
    /// Pings until <paramref name="stop"/> is cancelled or the peer has been silent too long (then calls onSilence once).
    /// With a sweep this joins it and returns at once; <see cref="Leave"/> ends it.
    /// </summary>
    public async Task RunAsync(CancellationToken stop)
    {
        if (options.KeepAliveInterval <= TimeSpan.Zero)
        {
            return;
        }
        if (options.KeepAliveSweep is { } sweep)
        {
            _nextBeat = options.TimeProvider.GetTimestamp() + IntervalInTimestampUnits();
            sweep.Add(this);
            return;
        }
        using var timer = new PeriodicTimer(options.KeepAliveInterval, options.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                if (!Beat())
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The link stopped.
        }
    }

    /// <summary>Leaves the sweep (the link stopped); a no-op for a link on its own timer.</summary>
    public void Leave()
    {
        Volatile.Write(ref _ended, 1);
        options.KeepAliveSweep?.Remove(this);
    }

    /// <summary>Time until this link's next beat is due, on its own clock (the sweep files it under that tick).</summary>
    internal TimeSpan DueIn => options.TimeProvider.GetElapsedTime(options.TimeProvider.GetTimestamp(), _nextBeat);

    /// <summary>
    /// Called by the sweep at the tick this link is filed under: beats when its interval has come round. Returns the time
    /// until the next beat is due (the sweep files it again), or null when the link has left (ended, or found silent).
    /// </summary>
    internal TimeSpan? OnSweep()
    {
        if (Volatile.Read(ref _ended) == 1)
        {
            return null;
        }
        var now = options.TimeProvider.GetTimestamp();
        if (now >= _nextBeat)
        {
            // The next beat one interval after this one was due (not after now): a late tick does not shift the schedule.
            _nextBeat += IntervalInTimestampUnits();
            if (_nextBeat <= now)
            {
                _nextBeat = now + IntervalInTimestampUnits();
            }
            if (!Beat())
            {
                Leave();
                return null;
            }
        }
        return options.TimeProvider.GetElapsedTime(now, _nextBeat);
    }

    /// <summary>One interval: judge silence, else PING. False when the link was found silent (onSilence called).</summary>
    private bool Beat()
    {
        var silence = options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastReceivedTicks));
        if (silence > options.KeepAliveTimeout)
        {
            onSilence(silence);
            return false;
        }
        var peerPinging = Volatile.Read(ref _lastPeerPingTicks) != 0
            && options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastPeerPingTicks)) <= 2 * options.KeepAliveInterval;
        if (options.SkipPingWhilePeerPings && peerPinging)
        {
            Interlocked.Increment(ref _pingsSkipped);
            return true;
        }
        Interlocked.Increment(ref _pingsSent);
        sendPing(++_sequence);
        return true;
    }

    private long IntervalInTimestampUnits() =>
        (long)(options.KeepAliveInterval.Ticks * (double)options.TimeProvider.TimestampFrequency / TimeSpan.TicksPerSecond);
}
