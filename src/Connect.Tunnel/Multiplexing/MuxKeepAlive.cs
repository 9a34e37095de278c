namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// Keep-alive of one multiplexer: a PING every <see cref="MuxOptions.KeepAliveInterval"/>, and a verdict when
/// nothing at all has arrived from the peer for <see cref="MuxOptions.KeepAliveTimeout"/> (any frame counts, not
/// only PONG, so a busy link never needs a PONG in time). Deadlines run on the options' <see cref="TimeProvider"/>.
/// </summary>
internal sealed class MuxKeepAlive(MuxOptions options, Action<ulong> sendPing, Action<TimeSpan> onSilence)
{
    private long _lastReceivedTicks = options.TimeProvider.GetTimestamp();

    /// <summary>Notes that bytes arrived from the peer (called by the read loop on every receive).</summary>
    public void Touch() => Volatile.Write(ref _lastReceivedTicks, options.TimeProvider.GetTimestamp());

    /// <summary>Pings until <paramref name="stop"/> is cancelled or the peer has been silent too long (then calls onSilence once).</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        if (options.KeepAliveInterval <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(options.KeepAliveInterval, options.TimeProvider);
        ulong sequence = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var silence = options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastReceivedTicks));
                if (silence > options.KeepAliveTimeout)
                {
                    onSilence(silence);
                    return;
                }
                sendPing(++sequence);
            }
        }
        catch (OperationCanceledException)
        {
            // The link stopped.
        }
    }
}
