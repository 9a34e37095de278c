using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Transport;

namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// The outbound side of one multiplexer: the queue of frames, the pooled send blocks they are written into, and
/// the write loop that sends them. Writers copy each frame once, header and payload, straight into the outbound
/// blocks; the write loop swaps the blocks out under the lock and sends each as one transport write (one WebSocket
/// message of whole frames).
/// </summary>
/// <remarks>
/// Link-level and credit frames (OPEN, OPEN_OK, OPEN_ERR, WINDOW, PING, PONG, GOAWAY) go into a separate priority
/// list that is sent before any DATA, so a WINDOW never waits behind a window's worth of queued DATA. DATA, FIN and
/// RST keep their relative order (FIN must follow the stream's last DATA). Every priority frame queued before a DATA
/// frame is sent before it, because the loop takes both lists in the same critical section; the only frames a stream
/// sends before its DATA (OPEN, OPEN_OK) are priority frames, so the wire order the protocol needs is kept.
/// </remarks>
internal sealed class MuxSendScheduler
{
    /// <summary>How soon after a send a wake-up for little DATA counts as "more is coming" (a stream of small writes, not a lone request).</summary>
    private static readonly long StreamingGap = Stopwatch.Frequency / 20_000; // 50 us

    private readonly IFrameTransport _transport;
    private readonly MuxOptions _options;
    private readonly Action<Exception> _onSendFailed;
    private readonly object _writeSync = new();
    private readonly AutoResetSignal _writeSignal = new();
    private readonly int _blockSize;
    private List<OutBlock> _priority = new();
    private List<OutBlock> _ordered = new();
    private (int Code, string Reason)? _closeRequest;
    private bool _outboundClosed;
    // The last frame of _ordered while it is a DATA frame that may still grow: consecutive writes of one stream
    // extend it (up to MaxDataChunk) instead of each adding a frame. Stream 0 means "none" (no stream has id 0).
    private uint _growStream;
    private int _growHeaderAt;
    private int _growLength;
    // Bytes queued and not yet taken by the write loop (read without the lock to decide whether to wait for more).
    private int _pendingOrdered;
    private int _pendingPriority;
    private int _queuedControl;
    private long _lastSendEnd;
    private long _bytesOut;

    /// <param name="onSendFailed">Called once, on the write loop, when a transport send fails (before the transport is aborted).</param>
    public MuxSendScheduler(IFrameTransport transport, MuxOptions options, Action<Exception> onSendFailed)
    {
        _transport = transport;
        _options = options;
        _onSendFailed = onSendFailed;
        // A block holds about MaxBatchSize of frames plus one more frame; a power of two fits the pool's buckets.
        _blockSize = (int)BitOperations.RoundUpToPowerOf2((uint)(options.MaxBatchSize + ProtocolLimits.HeaderSize + options.MaxDataChunk));
    }

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>True when the peer has made us queue more control frames (PONG, WINDOW...) than allowed without reading them.</summary>
    public bool ControlQueueFull
    {
        get
        {
            lock (_writeSync)
            {
                return _queuedControl >= _options.MaxQueuedControlFrames;
            }
        }
    }

    /// <summary>Queues a link-level or credit frame ahead of all DATA. Returns false when the outbound side is closed.</summary>
    public bool EnqueuePriority(ReadOnlySpan<byte> frame, bool wake = true) => Enqueue(priority: true, frame, wake);

    /// <summary>Queues FIN or RST: in order with the stream's DATA.</summary>
    public bool EnqueueOrdered(ReadOnlySpan<byte> frame) => Enqueue(priority: false, frame, wake: true);

    /// <summary>Wakes the write loop after frames were queued with <c>wake: false</c> (call outside locks).</summary>
    public void Wake() => _writeSignal.Set();

    /// <summary>
    /// Queues DATA (the caller has taken the credit, at most <paramref name="maxPayload"/>). When the last queued
    /// frame is still this stream's DATA and the sum fits <paramref name="maxPayload"/> (the writer's chunk size:
    /// MaxDataChunk, or SoloDataChunk while it is alone on the link), the payload extends that frame: small writes
    /// of one stream that queue up behind a send leave as one frame. Returns false when the link is closed.
    /// </summary>
    public bool EnqueueData(uint streamId, in ReadOnlySequence<byte> payload, int maxPayload)
    {
        var length = (int)payload.Length;
        lock (_writeSync)
        {
            if (_outboundClosed)
            {
                return false;
            }
            var all = CollectionsMarshal.AsSpan(_ordered);
            var grown = false;
            if (_growStream == streamId && all.Length > 0 && _growLength + length <= maxPayload)
            {
                ref var tail = ref all[^1];
                if (tail.Array.Length - tail.Length >= length)
                {
                    payload.CopyTo(tail.Array.AsSpan(tail.Length));
                    tail.Length += length;
                    _growLength += length;
                    BinaryPrimitives.WriteUInt32BigEndian(tail.Array.AsSpan(_growHeaderAt + 5), (uint)_growLength);
                    grown = true;
                }
            }
            if (!grown)
            {
                var size = ProtocolLimits.HeaderSize + length;
                var target = Reserve(_ordered, size, priority: false);
                FrameCodec.WriteHeader(target, FrameType.Data, streamId, length);
                payload.CopyTo(target[ProtocolLimits.HeaderSize..]);
                _growStream = streamId;
                _growHeaderAt = _ordered[^1].Length - size;
                _growLength = length;
            }
            _pendingOrdered += length + (grown ? 0 : ProtocolLimits.HeaderSize);
        }
        _writeSignal.Set();
        return true;
    }

    /// <summary>
    /// Queues a pooled block that a writer filled with one whole DATA frame at its start (header and payload, the
    /// payload read straight from its source): it becomes the tail block as it is, with no copy, and later frames may
    /// be appended behind it. The scheduler owns the block from here on and returns it to the pool, also when the
    /// link is closed (then it returns false).
    /// </summary>
    public bool EnqueueDataBlock(uint streamId, byte[] block, int length)
    {
        lock (_writeSync)
        {
            if (!_outboundClosed)
            {
                _ordered.Add(new OutBlock(block, length));
                _growStream = streamId;
                _growHeaderAt = 0;
                _growLength = length - ProtocolLimits.HeaderSize;
                _pendingOrdered += length;
                block = null!;
            }
        }
        if (block is not null)
        {
            ArrayPool<byte>.Shared.Return(block);
            return false;
        }
        _writeSignal.Set();
        return true;
    }

    /// <summary>Queues the close (after every frame queued so far); frames queued later are dropped.</summary>
    public void EnqueueClose(int code, string reason)
    {
        lock (_writeSync)
        {
            if (_outboundClosed)
            {
                return;
            }
            _outboundClosed = true;
            _closeRequest = (code, reason);
        }
        _writeSignal.Set();
    }

    /// <summary>Stops taking frames; wakes the loop so that it sends what it has and ends.</summary>
    public void Complete()
    {
        lock (_writeSync)
        {
            _outboundClosed = true;
        }
        _writeSignal.Set();
    }

    private bool Enqueue(bool priority, ReadOnlySpan<byte> frame, bool wake)
    {
        lock (_writeSync)
        {
            if (_outboundClosed)
            {
                return false;
            }
            var target = Reserve(priority ? _priority : _ordered, frame.Length, priority);
            frame.CopyTo(target);
            // Every frame that is not DATA counts against MaxQueuedControlFrames (DATA is bounded by credit instead).
            _queuedControl++;
            if (priority)
            {
                _pendingPriority += frame.Length;
            }
            else
            {
                _pendingOrdered += frame.Length;
                _growStream = 0; // FIN/RST ends the DATA that may grow: later DATA must follow it.
            }
        }
        if (wake)
        {
            _writeSignal.Set();
        }
        return true;
    }

    private Span<byte> Reserve(List<OutBlock> blocks, int size, bool priority)
    {
        var all = CollectionsMarshal.AsSpan(blocks);
        if (all.Length > 0)
        {
            ref var tail = ref all[^1];
            if (tail.Length < _options.MaxBatchSize && tail.Array.Length - tail.Length >= size)
            {
                var at = tail.Length;
                tail.Length += size;
                return tail.Array.AsSpan(at, size);
            }
        }
        var array = ArrayPool<byte>.Shared.Rent(Math.Max(size, priority ? 4096 : _blockSize));
        blocks.Add(new OutBlock(array, size));
        return array.AsSpan(0, size);
    }

    /// <summary>Sends queued blocks until the outbound side is closed (after the close frame, if one was queued) or a send fails.</summary>
    public async Task RunAsync()
    {
        var priority = new List<OutBlock>();
        var ordered = new List<OutBlock>();
        try
        {
            while (true)
            {
                await _writeSignal.WaitAsync().ConfigureAwait(false);
                if (ShouldWaitForMore())
                {
                    // Woken (probably on a writer's thread) for a small amount of DATA right after the previous
                    // send: frames are streaming in. Let the writer return and append its next writes before the
                    // lists are taken, so they leave as one message (and one frame per stream) instead of one each.
                    await Task.Yield();
                }
                while (true)
                {
                    (int Code, string Reason)? close;
                    bool done;
                    lock (_writeSync)
                    {
                        (priority, _priority) = (_priority, priority);
                        (ordered, _ordered) = (_ordered, ordered);
                        _queuedControl = 0;
                        _pendingOrdered = 0;
                        _pendingPriority = 0;
                        _growStream = 0;
                        close = _closeRequest;
                        _closeRequest = null;
                        done = _outboundClosed;
                    }
                    if (priority.Count == 0 && ordered.Count == 0 && close is null)
                    {
                        if (done)
                        {
                            return;
                        }
                        break;
                    }
                    await SendBlocksAsync(priority).ConfigureAwait(false);
                    await SendBlocksAsync(ordered).ConfigureAwait(false);
                    Volatile.Write(ref _lastSendEnd, Stopwatch.GetTimestamp());
                    if (close is { } c)
                    {
                        await _transport.CloseAsync(c.Code, c.Reason, CancellationToken.None).ConfigureAwait(false);
                        return;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            _onSendFailed(e);
            _transport.Abort();
        }
        finally
        {
            lock (_writeSync)
            {
                _outboundClosed = true;
                ReturnBlocks(_priority);
                ReturnBlocks(_ordered);
                _closeRequest = null;
            }
            ReturnBlocks(priority);
            ReturnBlocks(ordered);
        }
    }

    /// <summary>
    /// True when only a small amount of DATA (no control frame) is queued and the previous send ended moments
    /// ago: waiting one yield for more batches a stream of small writes, while a lone write after a pause (a
    /// request, a response) is sent at once, and WINDOW/PING/OPEN frames never wait.
    /// </summary>
    private bool ShouldWaitForMore()
    {
        // Nothing queued (a wake-up for frames a previous turn already took): no reason to wait.
        var ordered = Volatile.Read(ref _pendingOrdered);
        return ordered > 0 && ordered < _options.MaxDataChunk
            && Volatile.Read(ref _pendingPriority) == 0
            && Stopwatch.GetTimestamp() - Volatile.Read(ref _lastSendEnd) < StreamingGap;
    }

    private async ValueTask SendBlocksAsync(List<OutBlock> blocks)
    {
        // Each block holds whole frames: one transport write (one message) each. Blocks go back to the pool
        // as soon as they are sent, so an idle link holds none.
        for (var i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            await _transport.SendAsync(block.Array.AsMemory(0, block.Length), CancellationToken.None).ConfigureAwait(false);
            Interlocked.Add(ref _bytesOut, block.Length);
            ArrayPool<byte>.Shared.Return(block.Array);
            blocks[i] = default;
        }
        blocks.Clear();
    }

    private static void ReturnBlocks(List<OutBlock> blocks)
    {
        foreach (var block in blocks)
        {
            if (block.Array is not null)
            {
                ArrayPool<byte>.Shared.Return(block.Array);
            }
        }
        blocks.Clear();
    }

    private record struct OutBlock(byte[] Array, int Length);
}
