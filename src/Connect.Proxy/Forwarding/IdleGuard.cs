using System.Buffers;
using Connect.Tunnel.Piping;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// Watches a splice for silence: both ends are wrapped so every byte read either way counts as activity, and when
/// none has moved for the timeout, <see cref="Expired"/> is set and the callback tears the tunnel down (the caller
/// resets the stream with RST(IdleTimeout) and aborts the client connection). A zero timeout watches nothing.
/// </summary>
public sealed class IdleGuard : IAsyncDisposable
{
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Action _onIdle;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watch;
    private long _lastActivity;
    private int _expired;

    public IdleGuard(TimeSpan timeout, TimeProvider time, Action onIdle)
    {
        _timeout = timeout;
        _time = time;
        _onIdle = onIdle;
        _lastActivity = time.GetTimestamp();
        _watch = timeout > TimeSpan.Zero ? WatchAsync() : Task.CompletedTask;
    }

    /// <summary>True once the tunnel was ended for being idle.</summary>
    public bool Expired => Volatile.Read(ref _expired) == 1;

    public DuplexEnd Watch(DuplexEnd end) => _timeout > TimeSpan.Zero ? new Watched(end, this) : end;

    private void Touch() => Volatile.Write(ref _lastActivity, _time.GetTimestamp());

    private async Task WatchAsync()
    {
        try
        {
            while (true)
            {
                var idle = _time.GetElapsedTime(Volatile.Read(ref _lastActivity));
                if (idle >= _timeout)
                {
                    Volatile.Write(ref _expired, 1);
                    _onIdle();
                    return;
                }
                await Task.Delay(_timeout - idle, _time, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _watch.ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed class Watched(DuplexEnd inner, IdleGuard guard) : DuplexEnd
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            guard.Touch();
            return read;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.WriteAsync(data, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken) => inner.WriteAsync(data, cancellationToken);

        // Forwarded, so that watching an end (the default: a stream idle timeout is configured) keeps its
        // buffer-free path (PipeEnd) instead of falling back to the splice buffer.
        public override bool CanReadInto => inner.CanReadInto;

        public override async ValueTask<int> ReadIntoAsync(DuplexEnd destination, CancellationToken cancellationToken)
        {
            var moved = await inner.ReadIntoAsync(destination, cancellationToken).ConfigureAwait(false);
            guard.Touch();
            return moved;
        }

        // The source is the other watched end: its ReadAsync counts the activity.
        public override bool CanWriteFrom => inner.CanWriteFrom;

        public override ValueTask<int> WriteFromAsync(DuplexEnd source, CancellationToken cancellationToken) => inner.WriteFromAsync(source, cancellationToken);

        public override ValueTask ShutdownWriteAsync() => inner.ShutdownWriteAsync();

        public override void Abort(string reason) => inner.Abort(reason);

        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
