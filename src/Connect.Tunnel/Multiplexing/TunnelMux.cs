using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Transport;

namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// The connect.v1 multiplexer over one transport: one read loop that decodes and dispatches frames, one
/// write loop that batches queued frames into transport writes, and the streams between them. Bytes move
/// from a stream's writer into the write queue and from the read loop into the reading stream's buffer;
/// credit windows bound both, so a slow stream never stalls the others or grows memory.
/// A protocol violation closes this link with a close code and a reason; nothing escapes to the caller.
/// </summary>
public sealed class TunnelMux : IAsyncDisposable
{
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly IFrameTransport _transport;
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
    private long _lastSendEnd;
    private readonly Dictionary<uint, MuxStream> _streams = new();
    private readonly object _sync = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<LinkCloseInfo> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Action<IncomingStream>? _onIncoming;
    private uint _nextLocalId;
    private uint _highestRemoteId;
    private int _queuedControl;
    private long _lastReceivedTicks;
    private long _bytesIn;
    private long _bytesOut;
    private long _streamsOpened;
    private long _resetsReceived;
    private bool _goAwaySent;
    private bool _idsExhausted;
    private bool _goAwayReceived;
    private LinkCloseInfo? _closeInfo;
    private int _started;

    public TunnelMux(IFrameTransport transport, MuxOptions options)
    {
        _transport = transport;
        Options = options;
        _nextLocalId = options.FirstLocalStreamId ?? (options.IsDialer ? 1u : 2u);
        if (_nextLocalId == 0 || (_nextLocalId % 2 == 1) != options.IsDialer)
        {
            throw new ArgumentException($"the first stream id {_nextLocalId} has the wrong parity (the dialer opens odd ids, the other side even)");
        }
        _lastReceivedTicks = options.TimeProvider.GetTimestamp();
        // A block holds about MaxBatchSize of frames plus one more frame; a power of two fits the pool's buckets.
        _blockSize = (int)BitOperations.RoundUpToPowerOf2((uint)(options.MaxBatchSize + ProtocolLimits.HeaderSize + options.MaxDataChunk));
    }

    public MuxOptions Options { get; }

    public string RemoteDescription => _transport.RemoteDescription;

    /// <summary>Raised (on the read loop or a writer's thread) whenever the number of open streams changes.</summary>
    public event Action<TunnelMux>? StreamsChanged;

    /// <summary>Raised on the read loop when the peer sends GOAWAY.</summary>
    public event Action<GoAwayInfo>? GoAwayReceived;

    /// <summary>Completes when the link has closed, with who closed it and why.</summary>
    public Task<LinkCloseInfo> Closed => _closed.Task;

    public int ActiveStreams { get { lock (_sync) { return _streams.Count; } } }

    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    /// <summary>RST frames the peer sent (a stream that ended normally, FIN both ways, sends none).</summary>
    public long ResetsReceived => Interlocked.Read(ref _resetsReceived);

    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>True after GOAWAY went either way: no new streams start on this link.</summary>
    public bool IsGoingAway { get { lock (_sync) { return _goAwaySent || _goAwayReceived || _closeInfo is not null; } } }

    public bool IsClosed { get { lock (_sync) { return _closeInfo is not null; } } }

    /// <summary>A snapshot of the open streams.</summary>
    public IReadOnlyList<MuxStream> Streams { get { lock (_sync) { return _streams.Values.ToArray(); } } }

    /// <summary>Runs the link until it closes. <paramref name="onIncoming"/> is called on the read loop for each OPEN from the peer and must not block.</summary>
    public async Task<LinkCloseInfo> RunAsync(Action<IncomingStream>? onIncoming = null, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("the multiplexer is already running");
        }
        _onIncoming = onIncoming;
        using var registration = cancellationToken.Register(() => _ = CloseAsync(CloseCodes.GoingAway, "shutting down"));
        var writer = Task.Run(WriteLoopAsync);
        var keepAlive = Options.KeepAliveInterval > TimeSpan.Zero ? KeepAliveLoopAsync() : Task.CompletedTask;

        LinkCloseInfo info;
        try
        {
            info = await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            info = new LinkCloseInfo(1006, $"transport failed: {e.Message}", ByPeer: true);
        }
        catch (Exception e)
        {
            // A callback (onIncoming, GoAwayReceived, StreamsChanged) threw: close this link, never leave it half-run.
            info = new LinkCloseInfo(CloseCodes.InternalError, $"internal error: {e.GetType().Name}: {e.Message}", ByPeer: false);
        }

        bool sendClose;
        lock (_sync)
        {
            sendClose = _closeInfo is null;
            _closeInfo ??= info;
            info = _closeInfo;
        }
        if (sendClose)
        {
            // The read loop ended on its own (violation, or the peer's close that we echo).
            EnqueueClose(info.Code, info.Reason);
        }
        CompleteOutbound();
        if (await Task.WhenAny(writer, Task.Delay(CloseHandshakeTimeout, Options.TimeProvider)).ConfigureAwait(false) != writer)
        {
            _transport.Abort();
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        await keepAlive.ConfigureAwait(false);
        _transport.Abort();
        FailAllStreams(info);
        _closed.TrySetResult(info);
        return info;
    }

    /// <summary>Opens a stream to <paramref name="target"/> and waits for the peer's OPEN_OK.</summary>
    /// <exception cref="StreamOpenException">The peer refused (OPEN_ERR) or the link cannot take new streams.</exception>
    public async Task<MuxStream> OpenStreamAsync(string target, CancellationToken cancellationToken = default)
    {
        MuxStream stream;
        lock (_sync)
        {
            if (_closeInfo is not null || _goAwaySent || _goAwayReceived)
            {
                throw new StreamOpenException(OpenErrorCode.GoingAway, $"link to {RemoteDescription} is going away");
            }
            if (_streams.Count >= Options.MaxStreams)
            {
                throw new StreamOpenException(OpenErrorCode.TooManyStreams, $"link already has {_streams.Count} streams open");
            }
            var id = _nextLocalId;
            var isLastId = id > ProtocolLimits.LastStreamId - 2;
            if (!isLastId)
            {
                _nextLocalId += 2; // never wraps: WasEverOpened compares against it
            }
            stream = new MuxStream(this, id, target, locallyOpened: true);
            _streams.Add(id, stream);
            // Queued under the lock that took the id: the peer requires OPEN ids to increase, so
            // two concurrent opens must not put their OPEN frames on the wire out of order.
            Enqueue(priority: true, FrameCodec.EncodeOpen(id, target), ReadOnlySpan<byte>.Empty, isData: false, wake: false);
            if (isLastId)
            {
                // That was the last id: the next would wrap, and a lower id is a protocol error (1002) at the peer.
                // GOAWAY right behind this OPEN makes callers use a fresh link or channel; this one closes when
                // its last stream ends (OnStreamClosed).
                _goAwaySent = _idsExhausted = true;
                Enqueue(priority: true, FrameCodec.EncodeGoAway(GoAwayCode.StreamIdsExhausted, "stream ids exhausted", []), ReadOnlySpan<byte>.Empty, isData: false, wake: false);
            }
        }
        _writeSignal.Set(); // outside the lock: the write loop may run on this thread until its send is pending
        Interlocked.Increment(ref _streamsOpened);
        StreamsChanged?.Invoke(this);
        try
        {
            await stream.Opened.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            stream.Reset(ResetCode.Cancel, "open cancelled");
            throw;
        }
        return stream;
    }

    /// <summary>Sends GOAWAY: no new streams either way; open ones finish. Returns false when already sent.</summary>
    public bool GoAway(GoAwayCode code, string reason, IReadOnlyList<string> suggestedServers)
    {
        lock (_sync)
        {
            if (_goAwaySent || _closeInfo is not null)
            {
                return false;
            }
            _goAwaySent = true;
        }
        SendControl(FrameCodec.EncodeGoAway(code, reason, suggestedServers));
        return true;
    }

    /// <summary>Starts a graceful close: queued frames are sent, then the close frame; open streams are reset.</summary>
    public Task<LinkCloseInfo> CloseAsync(int code, string reason)
    {
        lock (_sync)
        {
            if (_closeInfo is not null)
            {
                return _closed.Task;
            }
            _closeInfo = new LinkCloseInfo(code, reason, ByPeer: false);
        }
        foreach (var stream in Streams)
        {
            stream.Reset(ResetCode.LinkLost, reason);
        }
        EnqueueClose(code, reason);
        _ = AbortAfterAsync(CloseHandshakeTimeout);
        return _closed.Task;
    }

    private async Task AbortAfterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, Options.TimeProvider, _stop.Token).ConfigureAwait(false);
            _transport.Abort();
        }
        catch (OperationCanceledException)
        {
            // The link closed in time.
        }
    }

    /// <summary>Closes the transport at once (no close handshake).</summary>
    public void Abort(string reason)
    {
        lock (_sync)
        {
            _closeInfo ??= new LinkCloseInfo(1006, reason, ByPeer: false);
        }
        _transport.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _started) == 0)
        {
            _transport.Abort();
            return;
        }
        await CloseAsync(CloseCodes.Normal, "disposed").ConfigureAwait(false);
    }

    // ----- reading -----

    private async Task<LinkCloseInfo> ReadLoopAsync()
    {
        var frameBufferSize = ProtocolLimits.HeaderSize + ProtocolLimits.MaxFramePayload;
        byte[]? buffer = null;
        var filled = 0;
        long messageBytes = 0;
        try
        {
            while (true)
            {
                if (filled == 0 && buffer is not null)
                {
                    // Idle links hold no receive buffer: return it and wait with a zero-byte receive.
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
                if (buffer is null)
                {
                    var wait = await _transport.ReceiveAsync(Memory<byte>.Empty, _stop.Token).ConfigureAwait(false);
                    if (wait.Closed)
                    {
                        return PeerClosed(wait);
                    }
                    buffer = ArrayPool<byte>.Shared.Rent(frameBufferSize);
                }

                var result = await _transport.ReceiveAsync(buffer.AsMemory(filled), _stop.Token).ConfigureAwait(false);
                if (result.Closed)
                {
                    return filled > 0 && !_transport.IsMessageBased
                        ? new LinkCloseInfo(CloseCodes.ProtocolError, "stream ended inside a frame", ByPeer: true)
                        : PeerClosed(result);
                }
                if (result.IsText)
                {
                    return Violation(new FrameViolation(CloseCodes.UnsupportedData, "text messages are not part of connect.v1; send binary frames"));
                }
                Volatile.Write(ref _lastReceivedTicks, Options.TimeProvider.GetTimestamp());
                Interlocked.Add(ref _bytesIn, result.Count);
                filled += result.Count;
                messageBytes += result.Count;
                if (_transport.IsMessageBased && messageBytes > Options.MaxMessageSize)
                {
                    return Violation(new FrameViolation(CloseCodes.MessageTooBig, $"message larger than {Options.MaxMessageSize} bytes"));
                }

                var offset = 0;
                while (offset < filled)
                {
                    var status = FrameCodec.TryDecode(buffer.AsMemory(offset, filled - offset), ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
                    if (status == DecodeStatus.NeedMore)
                    {
                        break;
                    }
                    if (status == DecodeStatus.Violation)
                    {
                        return Violation(violation!);
                    }
                    var problem = Dispatch(frame);
                    if (problem is not null)
                    {
                        return Violation(problem);
                    }
                    offset += consumed;
                }

                var remaining = filled - offset;
                if (remaining > 0 && offset > 0)
                {
                    Buffer.BlockCopy(buffer, offset, buffer, 0, remaining);
                }
                filled = remaining;
                if (result.EndOfMessage && _transport.IsMessageBased)
                {
                    if (filled > 0)
                    {
                        return Violation(new FrameViolation(CloseCodes.ProtocolError, "a message ended inside a frame"));
                    }
                    messageBytes = 0;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private LinkCloseInfo PeerClosed(TransportReceiveResult result) =>
        new(result.CloseCode ?? CloseCodes.Normal, result.CloseReason ?? "closed by peer", ByPeer: true);

    private LinkCloseInfo Violation(FrameViolation violation)
    {
        var info = new LinkCloseInfo(violation.CloseCode, violation.Reason, ByPeer: false);
        lock (_sync)
        {
            _closeInfo ??= info;
        }
        EnqueueClose(info.Code, info.Reason);
        return info;
    }

    /// <summary>Applies one frame; returns a violation that closes the link, or null.</summary>
    private FrameViolation? Dispatch(in Frame frame)
    {
        switch (frame.Type)
        {
            case FrameType.Ping:
                lock (_writeSync)
                {
                    if (_queuedControl >= Options.MaxQueuedControlFrames)
                    {
                        return new FrameViolation(CloseCodes.PolicyViolation, "peer sends faster than it reads (control queue full)");
                    }
                }
                SendPing(FrameType.Pong, FrameCodec.ReadPing(frame.Payload.Span));
                return null;
            case FrameType.Pong:
                return null;
            case FrameType.GoAway:
                lock (_sync)
                {
                    _goAwayReceived = true;
                }
                GoAwayReceived?.Invoke(FrameCodec.ReadGoAway(frame.Payload.Span));
                return null;
            case FrameType.Open:
                return OnOpen(frame);
        }

        MuxStream? stream;
        lock (_sync)
        {
            if (!_streams.TryGetValue(frame.StreamId, out stream) && !WasEverOpened(frame.StreamId))
            {
                return new FrameViolation(CloseCodes.ProtocolError, $"{frame.Type} for stream {frame.StreamId}, which was never opened");
            }
        }
        if (stream is null)
        {
            // A stream that already ended here: frames in flight when it ended are dropped (as RFC 9113 5.1 allows).
            return null;
        }

        switch (frame.Type)
        {
            case FrameType.OpenOk:
                if (!stream.LocallyOpened)
                {
                    return new FrameViolation(CloseCodes.ProtocolError, $"OPEN_OK for stream {frame.StreamId}, which the peer opened");
                }
                stream.OnOpenOk();
                return null;
            case FrameType.OpenErr:
                if (!stream.LocallyOpened)
                {
                    return new FrameViolation(CloseCodes.ProtocolError, $"OPEN_ERR for stream {frame.StreamId}, which the peer opened");
                }
                var (errCode, errReason) = FrameCodec.ReadCodeAndReason(frame.Payload.Span);
                stream.OnOpenRefused(Enum.IsDefined((OpenErrorCode)errCode) ? (OpenErrorCode)errCode : OpenErrorCode.Unknown, errReason);
                return null;
            case FrameType.Data:
                if (stream.LocallyOpened && !stream.Opened.IsCompletedSuccessfully)
                {
                    stream.Reset(ResetCode.ProtocolError, "DATA before OPEN_OK");
                    return null;
                }
                var windowProblem = stream.OnData(frame.Payload.Span, out var afterFin);
                if (windowProblem is not null)
                {
                    return new FrameViolation(CloseCodes.ProtocolError, windowProblem);
                }
                if (afterFin)
                {
                    stream.Reset(ResetCode.ProtocolError, "DATA after FIN");
                }
                return null;
            case FrameType.Window:
                var overflow = stream.OnWindow(FrameCodec.ReadWindowIncrement(frame.Payload.Span));
                return overflow is null ? null : new FrameViolation(CloseCodes.ProtocolError, overflow);
            case FrameType.Fin:
                if (!stream.OnFin())
                {
                    stream.Reset(ResetCode.ProtocolError, "second FIN");
                }
                return null;
            case FrameType.Rst:
                var (rstCode, rstReason) = FrameCodec.ReadCodeAndReason(frame.Payload.Span);
                Interlocked.Increment(ref _resetsReceived);
                stream.OnReset(Enum.IsDefined((ResetCode)rstCode) ? (ResetCode)rstCode : ResetCode.Internal, rstReason, byPeer: true);
                return null;
            default:
                return new FrameViolation(CloseCodes.ProtocolError, $"unexpected frame {frame.Type}");
        }
    }

    private bool IsRemoteId(uint id) => (id % 2 == 1) != Options.IsDialer;

    private bool WasEverOpened(uint id) => IsRemoteId(id) ? id <= _highestRemoteId : _idsExhausted || id < _nextLocalId;

    private FrameViolation? OnOpen(in Frame frame)
    {
        var id = frame.StreamId;
        if (!Options.AcceptInboundStreams)
        {
            return new FrameViolation(CloseCodes.PolicyViolation, "OPEN is not allowed from this side of the link");
        }
        if (!IsRemoteId(id))
        {
            return new FrameViolation(CloseCodes.ProtocolError, $"OPEN with stream id {id} of the wrong parity");
        }
        MuxStream stream;
        string? refusal = null;
        var refusalCode = OpenErrorCode.Unknown;
        lock (_sync)
        {
            if (id <= _highestRemoteId)
            {
                return new FrameViolation(CloseCodes.ProtocolError, $"OPEN reuses stream id {id} (ids must increase)");
            }
            _highestRemoteId = id;
            stream = new MuxStream(this, id, FrameCodec.ReadTarget(frame.Payload.Span), locallyOpened: false);
            if (_goAwaySent || _closeInfo is not null)
            {
                refusal = "link is going away";
                refusalCode = OpenErrorCode.GoingAway;
            }
            else if (_streams.Count >= Options.MaxStreams || _onIncoming is null)
            {
                refusal = $"too many streams ({_streams.Count} open, limit {Options.MaxStreams})";
                refusalCode = OpenErrorCode.TooManyStreams;
            }
            else
            {
                _streams.Add(id, stream);
            }
        }
        if (refusal is not null)
        {
            SendControl(FrameCodec.EncodeCodeAndReason(FrameType.OpenErr, id, (byte)refusalCode, refusal));
            return null;
        }
        Interlocked.Increment(ref _streamsOpened);
        StreamsChanged?.Invoke(this);
        _onIncoming!(new IncomingStream(this, stream));
        return null;
    }

    internal void OnStreamClosed(MuxStream stream)
    {
        bool removed;
        bool retire;
        lock (_sync)
        {
            removed = _streams.Remove(stream.Id);
            retire = removed && _idsExhausted && _streams.Count == 0;
        }
        if (removed)
        {
            StreamsChanged?.Invoke(this);
        }
        if (retire)
        {
            _ = CloseAsync(CloseCodes.GoingAway, "stream ids exhausted");
        }
    }

    private void FailAllStreams(LinkCloseInfo info)
    {
        foreach (var stream in Streams)
        {
            stream.OnReset(ResetCode.LinkLost, $"link closed: {info.Reason}", byPeer: info.ByPeer);
        }
    }

    // ----- writing -----
    //
    // Writers copy each frame once, header and payload, straight into the outbound blocks; the write loop
    // swaps the blocks out under the lock and sends each as one transport write (one WebSocket message of
    // whole frames). Link-level and credit frames (OPEN, OPEN_OK, OPEN_ERR, WINDOW, PING, PONG, GOAWAY)
    // go into a separate priority list that is sent before any DATA, so a WINDOW never waits behind a
    // window's worth of queued DATA. DATA, FIN and RST keep their relative order (FIN must follow the
    // stream's last DATA). Every priority frame queued before a DATA frame is sent before it, because the
    // loop takes both lists in the same critical section; the only frames a stream sends before its DATA
    // (OPEN, OPEN_OK) are priority frames, so the wire order the protocol needs is kept.

    internal void SendControl(byte[] frame) => Enqueue(priority: true, frame, ReadOnlySpan<byte>.Empty, isData: false);

    /// <summary>Queues FIN or RST: in order with the stream's DATA.</summary>
    internal void SendOrdered(byte[] frame) => Enqueue(priority: false, frame, ReadOnlySpan<byte>.Empty, isData: false);

    internal void SendWindow(uint streamId, uint increment)
    {
        Span<byte> frame = stackalloc byte[ProtocolLimits.HeaderSize + 4];
        FrameCodec.WriteHeader(frame, FrameType.Window, streamId, 4);
        BinaryPrimitives.WriteUInt32BigEndian(frame[ProtocolLimits.HeaderSize..], increment);
        Enqueue(priority: true, frame, ReadOnlySpan<byte>.Empty, isData: false);
    }

    private void SendPing(FrameType type, ulong value)
    {
        Span<byte> frame = stackalloc byte[ProtocolLimits.HeaderSize + 8];
        FrameCodec.WriteHeader(frame, type, 0, 8);
        BinaryPrimitives.WriteUInt64BigEndian(frame[ProtocolLimits.HeaderSize..], value);
        Enqueue(priority: true, frame, ReadOnlySpan<byte>.Empty, isData: false);
    }

    /// <summary>
    /// Queues DATA (the caller has taken the credit, at most MaxDataChunk). When the last queued frame is still
    /// this stream's DATA and the sum fits MaxDataChunk, the payload extends that frame: small writes of one
    /// stream that queue up behind a send leave as one frame. Returns false when the link is closed.
    /// </summary>
    internal bool EnqueueData(uint streamId, in ReadOnlySequence<byte> payload)
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
            if (_growStream == streamId && all.Length > 0 && _growLength + length <= Options.MaxDataChunk)
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

    /// <summary>Queues the close (after every frame queued so far); frames queued later are dropped.</summary>
    private void EnqueueClose(int code, string reason)
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

    /// <summary>Stops taking frames (the write loop is gone); wakes the loop so that it sees it.</summary>
    private void CompleteOutbound()
    {
        lock (_writeSync)
        {
            _outboundClosed = true;
        }
        _writeSignal.Set();
    }

    private bool Enqueue(bool priority, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body, bool isData, bool wake = true)
    {
        var size = head.Length + body.Length;
        lock (_writeSync)
        {
            if (_outboundClosed)
            {
                return false;
            }
            var blocks = priority ? _priority : _ordered;
            var target = Reserve(blocks, size, priority);
            head.CopyTo(target);
            body.CopyTo(target[head.Length..]);
            if (!isData)
            {
                _queuedControl++;
            }
            if (priority)
            {
                _pendingPriority += size;
            }
            else
            {
                _pendingOrdered += size;
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
            if (tail.Length < Options.MaxBatchSize && tail.Array.Length - tail.Length >= size)
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

    private async Task WriteLoopAsync()
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
            lock (_sync)
            {
                _closeInfo ??= new LinkCloseInfo(1006, $"send failed: {e.Message}", ByPeer: true);
            }
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

    /// <summary>How soon after a send a wake-up for little DATA counts as "more is coming" (a stream of small writes, not a lone request).</summary>
    private static readonly long StreamingGap = Stopwatch.Frequency / 20_000; // 50 us

    /// <summary>
    /// True when only a small amount of DATA (no control frame) is queued and the previous send ended moments
    /// ago: waiting one yield for more batches a stream of small writes, while a lone write after a pause (a
    /// request, a response) is sent at once, and WINDOW/PING/OPEN frames never wait.
    /// </summary>
    private bool ShouldWaitForMore()
    {
        // Nothing queued (a wake-up for frames a previous turn already took): no reason to wait.
        var ordered = Volatile.Read(ref _pendingOrdered);
        return ordered > 0 && ordered < Options.MaxDataChunk
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

    private async Task KeepAliveLoopAsync()
    {
        using var timer = new PeriodicTimer(Options.KeepAliveInterval, Options.TimeProvider);
        ulong sequence = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var silence = Options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastReceivedTicks));
                if (silence > Options.KeepAliveTimeout)
                {
                    // Not awaited: CloseAsync returns Closed, which completes only after RunAsync has awaited this loop.
                    _ = CloseAsync(CloseCodes.KeepAliveTimeout, $"nothing received for {silence.TotalSeconds:0} s");
                    return;
                }
                SendPing(FrameType.Ping, ++sequence);
            }
        }
        catch (OperationCanceledException)
        {
            // The link stopped.
        }
    }
}
