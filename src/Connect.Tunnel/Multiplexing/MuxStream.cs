using System.Buffers;
using Connect.Tunnel.Frames;

namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// One multiplexed stream: a duplex byte stream with per-direction credit windows and half-close.
/// Reads return 0 after the peer's FIN; <see cref="CompleteWritesAsync"/> sends ours. Disposing a stream
/// that is not closed both ways resets it, so a stream always ends exactly once.
/// </summary>
public sealed class MuxStream : Stream
{
    private readonly TunnelMux _mux;
    private readonly object _sync = new();
    private readonly Queue<Segment> _segments = new();
    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Waiter _readWaiter = new();
    private readonly Waiter _creditWaiter = new();
    private Segment? _tail;
    private long _sendCredit = ProtocolLimits.InitialWindow;
    private int _receiveWindow = ProtocolLimits.InitialWindow;
    private int _unacknowledged;
    private int _buffered;
    private int _headConsumed;
    private bool _localFin;
    private bool _remoteFin;
    private bool _removed;
    private StreamResetException? _reset;
    private long _bytesRead;
    private long _bytesWritten;

    internal MuxStream(TunnelMux mux, uint id, string target, bool locallyOpened)
    {
        _mux = mux;
        Id = id;
        Target = target;
        LocallyOpened = locallyOpened;
        OpenedAt = mux.Options.TimeProvider.GetUtcNow();
    }

    /// <summary>Received bytes: DATA payloads are appended to the tail segment while it has room, so small frames share one pooled array.</summary>
    private sealed class Segment(byte[] array, int count)
    {
        public byte[] Array { get; } = array;

        public int Count { get; set; } = count;
    }

    /// <summary>Smallest receive segment: small DATA frames are packed into segments of this size instead of one pooled array each.</summary>
    private const int SegmentSize = 16 * 1024;

    public uint Id { get; }

    /// <summary>The "host:port" the stream was opened to.</summary>
    public string Target { get; }

    /// <summary>True when this side sent the OPEN.</summary>
    public bool LocallyOpened { get; }

    public DateTimeOffset OpenedAt { get; }

    /// <summary>Bytes received from the peer and not yet read; never more than the window.</summary>
    public int BufferedBytes { get { lock (_sync) { return _buffered; } } }

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>The link this stream runs on.</summary>
    public TunnelMux Mux => _mux;

    internal Task Opened => _opened.Task;

    internal bool IsClosedBothWays { get { lock (_sync) { return _reset is not null || (_localFin && _remoteFin); } } }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }
        while (true)
        {
            ValueTask wait;
            int credit;
            int copied;
            lock (_sync)
            {
                if (_segments.Count > 0)
                {
                    copied = CopyOut(buffer.Span);
                    credit = AccountConsumed(copied);
                }
                else if (_reset is not null)
                {
                    throw _reset;
                }
                else if (_remoteFin)
                {
                    return 0;
                }
                else
                {
                    wait = _readWaiter.Arm(cancellationToken);
                    goto Wait;
                }
            }
            Interlocked.Add(ref _bytesRead, copied);
            if (credit > 0)
            {
                _mux.SendWindow(Id, (uint)credit);
            }
            return copied;

        Wait:
            await wait.ConfigureAwait(false);
        }
    }

    private int CopyOut(Span<byte> destination)
    {
        var copied = 0;
        while (copied < destination.Length && _segments.Count > 0)
        {
            var segment = _segments.Peek();
            var available = segment.Count - _headConsumed;
            var take = Math.Min(available, destination.Length - copied);
            segment.Array.AsSpan(_headConsumed, take).CopyTo(destination[copied..]);
            copied += take;
            if (take == available)
            {
                // Drained (the tail too: a stream that has read everything holds no buffer).
                _segments.Dequeue();
                _headConsumed = 0;
                if (ReferenceEquals(segment, _tail))
                {
                    _tail = null;
                }
                ArrayPool<byte>.Shared.Return(segment.Array);
            }
            else
            {
                _headConsumed += take;
            }
        }
        _buffered -= copied;
        return copied;
    }

    /// <summary>Returns the credit to grant back to the peer now, batched to a quarter of the window.</summary>
    private int AccountConsumed(int consumed)
    {
        if (_remoteFin || _reset is not null)
        {
            return 0;
        }
        _unacknowledged += consumed;
        if (_unacknowledged < ProtocolLimits.InitialWindow / 4)
        {
            return 0;
        }
        var credit = _unacknowledged;
        _unacknowledged = 0;
        _receiveWindow += credit;
        return credit;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        WriteAsync(new ReadOnlySequence<byte>(buffer), cancellationToken);

    /// <summary>
    /// Writes a multi-segment buffer (a pipe's read result) as DATA frames of up to the link's current chunk size each
    /// (<see cref="TunnelMux.DataChunk"/>), packing segments together instead of one frame per segment.
    /// </summary>
    public async ValueTask WriteAsync(ReadOnlySequence<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (buffer.Length > 0)
        {
            ValueTask? wait = null;
            var take = 0;
            var chunk = 0;
            lock (_sync)
            {
                if (_reset is not null)
                {
                    throw _reset;
                }
                if (_localFin)
                {
                    throw new InvalidOperationException($"stream {Id}: write after FIN");
                }
                if (_sendCredit > 0)
                {
                    chunk = _mux.DataChunk;
                    take = (int)Math.Min(Math.Min(buffer.Length, _sendCredit), chunk);
                    _sendCredit -= take;
                }
                else
                {
                    wait = _creditWaiter.Arm(cancellationToken);
                }
            }
            if (wait is { } w)
            {
                await w.ConfigureAwait(false);
                continue;
            }
            if (!_mux.EnqueueData(Id, buffer.Slice(0, take), chunk))
            {
                throw LinkLostException();
            }
            Interlocked.Add(ref _bytesWritten, take);
            buffer = buffer.Slice(take);
        }
    }

    /// <summary>
    /// Reads once from <paramref name="read"/> straight into a pooled outbound send block, behind a DATA header, and
    /// queues the block as it is: the bytes are copied once (source -> block) instead of twice (source -> splice
    /// buffer -> block). Waits for credit first and reads at most the credit, so nothing is read that cannot be sent.
    /// Returns the bytes sent; 0 when the source finished (nothing is sent then).
    /// </summary>
    internal async ValueTask<int> WriteFromAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, CancellationToken cancellationToken)
    {
        int room;
        int chunk;
        while (true)
        {
            ValueTask? wait = null;
            lock (_sync)
            {
                if (_reset is not null)
                {
                    throw _reset;
                }
                if (_localFin)
                {
                    throw new InvalidOperationException($"stream {Id}: write after FIN");
                }
                // Only this writer takes credit, so what is seen here is still there after the read. Wait for a full
                // chunk of credit: reading whatever sliver is left at the end of the window would turn one socket read,
                // one frame and one message into several (measured: +30% syscalls on the agent). The peer grants credit
                // back every InitialWindow/4 consumed, so with at most half the window wanted it always comes.
                chunk = _mux.DataChunk;
                room = (int)Math.Min(_sendCredit, chunk);
                if (room < Math.Min(chunk, ProtocolLimits.InitialWindow / 2))
                {
                    wait = _creditWaiter.Arm(cancellationToken);
                }
            }
            if (wait is not { } w)
            {
                break;
            }
            await w.ConfigureAwait(false);
        }
        // Header plus payload within the chunk: the block fills one pool bucket (32 KiB, 64 KiB alone on the link).
        var payload = Math.Min(room, chunk - ProtocolLimits.HeaderSize);
        var block = ArrayPool<byte>.Shared.Rent(ProtocolLimits.HeaderSize + payload);
        var handedOver = false;
        try
        {
            var count = await read(block.AsMemory(ProtocolLimits.HeaderSize, payload), cancellationToken).ConfigureAwait(false);
            if (count == 0)
            {
                return 0;
            }
            lock (_sync)
            {
                if (_reset is not null)
                {
                    throw _reset;
                }
                _sendCredit -= count;
            }
            FrameCodec.WriteHeader(block, FrameType.Data, Id, count);
            handedOver = true;
            if (!_mux.EnqueueDataBlock(Id, block, ProtocolLimits.HeaderSize + count))
            {
                throw LinkLostException();
            }
            Interlocked.Add(ref _bytesWritten, count);
            return count;
        }
        finally
        {
            if (!handedOver)
            {
                ArrayPool<byte>.Shared.Return(block);
            }
        }
    }

    /// <summary>Half-closes: sends FIN once; the peer's direction stays open until its FIN.</summary>
    public ValueTask CompleteWritesAsync()
    {
        lock (_sync)
        {
            if (_localFin || _reset is not null)
            {
                return ValueTask.CompletedTask;
            }
            _localFin = true;
        }
        _mux.SendOrdered(FrameCodec.Encode(FrameType.Fin, Id, ReadOnlySpan<byte>.Empty));
        RemoveIfDone();
        return ValueTask.CompletedTask;
    }

    /// <summary>Aborts the stream in both directions and tells the peer why (RST).</summary>
    public void Reset(ResetCode code, string reason)
    {
        lock (_sync)
        {
            if (_reset is not null || (_localFin && _remoteFin))
            {
                return;
            }
            _reset = new StreamResetException(code, reason, byPeer: false);
            ReleaseSegments();
        }
        // Leave the link's stream table first, so whoever observes the reset (the opener, the peer's RST) sees the count already down.
        RemoveIfDone();
        WakeAll();
        // A stream reset before OPEN_OK (DATA before OPEN_OK, a cancelled open) must not leave its opener waiting.
        // When the link itself is going (closed here), nothing reached the target: GoingAway lets the caller try
        // another link, where Internal would end the request as "the agent refused".
        var openError = code == ResetCode.LinkLost ? OpenErrorCode.GoingAway : OpenErrorCode.Internal;
        _opened.TrySetException(new StreamOpenException(openError, reason));
        _mux.SendOrdered(FrameCodec.EncodeCodeAndReason(FrameType.Rst, Id, (byte)code, reason));
    }

    // ----- events from the link's read loop -----

    internal void OnOpenOk() => _opened.TrySetResult();

    internal void OnOpenRefused(OpenErrorCode code, string reason)
    {
        lock (_sync)
        {
            _reset ??= new StreamResetException(ResetCode.Cancel, $"open refused: {reason}", byPeer: true);
        }
        RemoveIfDone();
        WakeAll();
        _opened.TrySetException(new StreamOpenException(code, reason));
    }

    /// <summary>
    /// Takes a DATA payload; returns a violation when the peer broke the window (a link error). <paramref name="owned"/>,
    /// when not null, is a pooled array holding the payload at its start (the read loop received it there): the stream
    /// keeps it as a segment instead of copying the payload, and sets it to null; else the caller still owns it.
    /// </summary>
    internal string? OnData(ReadOnlySpan<byte> payload, out bool dataAfterFin, ref byte[]? owned)
    {
        dataAfterFin = false;
        lock (_sync)
        {
            if (_reset is not null)
            {
                return null; // In flight when we reset it: drop.
            }
            if (_remoteFin)
            {
                dataAfterFin = true;
                return null;
            }
            if (payload.Length > _receiveWindow)
            {
                return $"stream {Id}: DATA of {payload.Length} bytes exceeds the remaining window of {_receiveWindow}";
            }
            _receiveWindow -= payload.Length;
            if (owned is not null)
            {
                // Kept as it is: the array is the pool bucket of the frame's size, as a segment rented here would be.
                _segments.Enqueue(_tail = new Segment(owned, payload.Length));
                owned = null;
            }
            else if (_tail is { } tail && tail.Array.Length - tail.Count >= payload.Length)
            {
                payload.CopyTo(tail.Array.AsSpan(tail.Count));
                tail.Count += payload.Length;
            }
            else
            {
                var array = ArrayPool<byte>.Shared.Rent(Math.Max(payload.Length, SegmentSize));
                payload.CopyTo(array);
                _segments.Enqueue(_tail = new Segment(array, payload.Length));
            }
            _buffered += payload.Length;
        }
        _readWaiter.Signal();
        return null;
    }

    internal string? OnWindow(uint increment)
    {
        lock (_sync)
        {
            if (_reset is not null || _localFin)
            {
                return null;
            }
            _sendCredit += increment;
            if (_sendCredit > ProtocolLimits.MaxWindow)
            {
                return $"stream {Id}: WINDOW increment {increment} overflows the window";
            }
        }
        _creditWaiter.Signal();
        return null;
    }

    /// <summary>Returns false for a second FIN (the caller resets the stream).</summary>
    internal bool OnFin()
    {
        lock (_sync)
        {
            if (_reset is not null)
            {
                return true;
            }
            if (_remoteFin)
            {
                return false;
            }
            _remoteFin = true;
        }
        _readWaiter.Signal();
        RemoveIfDone();
        return true;
    }

    internal void OnReset(ResetCode code, string reason, bool byPeer)
    {
        lock (_sync)
        {
            if (_reset is not null)
            {
                return;
            }
            _reset = new StreamResetException(code, reason, byPeer);
            ReleaseSegments();
        }
        RemoveIfDone();
        WakeAll();
        _opened.TrySetException(new StreamOpenException(OpenErrorCode.GoingAway, reason));
    }

    private void RemoveIfDone()
    {
        lock (_sync)
        {
            if (_removed || !(_reset is not null || (_localFin && _remoteFin)))
            {
                return;
            }
            _removed = true;
        }
        _mux.OnStreamClosed(this);
    }

    private StreamResetException LinkLostException()
    {
        lock (_sync)
        {
            return _reset ?? new StreamResetException(ResetCode.LinkLost, "the link closed", byPeer: false);
        }
    }

    private void ReleaseSegments()
    {
        while (_segments.Count > 0)
        {
            ArrayPool<byte>.Shared.Return(_segments.Dequeue().Array);
        }
        _tail = null;
        _headConsumed = 0;
        _buffered = 0;
    }

    /// <summary>Wakes both waiters; called outside the lock, because a waiter's continuation runs on this thread.</summary>
    private void WakeAll()
    {
        _readWaiter.Signal();
        _creditWaiter.Signal();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            bool clean;
            bool finishes;
            lock (_sync)
            {
                clean = _reset is not null || (_localFin && _remoteFin);
                // The peer already sent FIN and this side is done too: that is a normal end, so finish with FIN, not
                // RST. (An HTTP client that reads a response to its end disposes its connection without half-closing;
                // a RST here made every such request show up on the agent as "stream reset (Cancel, by peer)".)
                finishes = !clean && _remoteFin;
                if (clean)
                {
                    ReleaseSegments();
                }
            }
            if (finishes)
            {
                _ = CompleteWritesAsync();
                lock (_sync)
                {
                    ReleaseSegments();
                }
            }
            else if (!clean)
            {
                Reset(ResetCode.Cancel, "stream closed before both sides finished");
            }
        }
        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override string ToString() => $"stream {Id} -> {Target}";
}
