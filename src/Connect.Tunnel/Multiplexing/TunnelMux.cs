using System.Buffers;
using System.Buffers.Binary;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Transport;

namespace Connect.Tunnel.Multiplexing;

/// <summary>
/// The connect.v1 multiplexer over one transport: the read loop that decodes and dispatches frames, and the
/// streams of the link. Outbound frames go through a <see cref="MuxSendScheduler"/> (queue, send blocks, write
/// loop) and liveness through a <see cref="MuxKeepAlive"/>. Bytes move
/// from a stream's writer into the write queue and from the read loop into the reading stream's buffer;
/// credit windows bound both, so a slow stream never stalls the others or grows memory.
/// A protocol violation closes this link with a close code and a reason; nothing escapes to the caller.
/// </summary>
public sealed class TunnelMux : IAsyncDisposable
{
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    private readonly IFrameTransport _transport;
    private readonly MuxSendScheduler _send;
    private readonly MuxKeepAlive _keepAlive;
    private readonly Dictionary<uint, MuxStream> _streams = new();
    private readonly object _sync = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<LinkCloseInfo> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Action<IncomingStream>? _onIncoming;
    private uint _nextLocalId;
    private uint _highestRemoteId;
    private long _bytesIn;
    private long _streamsOpened;
    private long _resetsReceived;
    private long _directDataFrames;
    private bool _goAwaySent;
    private bool _idsExhausted;
    private bool _goAwayReceived;
    private LinkCloseInfo? _closeInfo;
    private int _started;
    // _streams.Count, written under _sync and read without it by writers choosing their frame size (DataChunk).
    private int _streamCount;

    public TunnelMux(IFrameTransport transport, MuxOptions options)
    {
        _transport = transport;
        Options = options;
        _nextLocalId = options.FirstLocalStreamId ?? (options.IsDialer ? 1u : 2u);
        if (_nextLocalId == 0 || (_nextLocalId % 2 == 1) != options.IsDialer)
        {
            throw new ArgumentException($"the first stream id {_nextLocalId} has the wrong parity (the dialer opens odd ids, the other side even)");
        }
        _send = new MuxSendScheduler(transport, options, OnSendFailed);
        _keepAlive = new MuxKeepAlive(options, sequence => SendPing(FrameType.Ping, sequence), OnKeepAliveSilence);
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

    /// <summary>
    /// Largest DATA payload a writer should send now: <see cref="MuxOptions.SoloDataChunk"/> while at most one stream
    /// is open (bulk), else <see cref="MuxOptions.MaxDataChunk"/> (the fairness quantum between streams).
    /// </summary>
    internal int DataChunk
    {
        get
        {
            var chunk = Options.MaxDataChunk;
            return Volatile.Read(ref _streamCount) <= 1 ? Math.Min(Math.Max(chunk, Options.SoloDataChunk), ProtocolLimits.MaxFramePayload) : chunk;
        }
    }

    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    public long BytesIn => Interlocked.Read(ref _bytesIn);

    /// <summary>RST frames the peer sent (a stream that ended normally, FIN both ways, sends none).</summary>
    public long ResetsReceived => Interlocked.Read(ref _resetsReceived);

    public long BytesOut => _send.BytesOut;

    /// <summary>DATA frames whose payload the read loop received straight into the array the stream kept (no copy).</summary>
    internal long DirectDataFrames => Interlocked.Read(ref _directDataFrames);

    /// <summary>PINGs this side has sent, and those it skipped because the peer was pinging (<see cref="MuxOptions.SkipPingWhilePeerPings"/>).</summary>
    public (long Sent, long Skipped) Pings => (_keepAlive.PingsSent, _keepAlive.PingsSkipped);

    /// <summary>PINGs the peer has sent (this side answered each with a PONG).</summary>
    public long PeerPings => _keepAlive.PeerPings;

    /// <summary>True after GOAWAY went either way: no new streams start on this link.</summary>
    public bool IsGoingAway { get { lock (_sync) { return _goAwaySent || _goAwayReceived || _closeInfo is not null; } } }

    public bool IsClosed { get { lock (_sync) { return _closeInfo is not null; } } }

    /// <summary>Why the link closed (null while it is open); set before its streams are failed, so their owners can read it.</summary>
    public LinkCloseInfo? CloseInfo { get { lock (_sync) { return _closeInfo; } } }

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
        var writer = Task.Run(_send.RunAsync);
        var keepAlive = _keepAlive.RunAsync(_stop.Token);

        LinkCloseInfo info;
        try
        {
            info = await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            info = new LinkCloseInfo(CloseCodes.AbnormalClosure, $"transport failed: {e.Message}", ByPeer: true);
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
            _send.EnqueueClose(info.Code, info.Reason);
        }
        _send.Complete();
        if (await Task.WhenAny(writer, Task.Delay(CloseHandshakeTimeout, Options.TimeProvider)).ConfigureAwait(false) != writer)
        {
            _transport.Abort();
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        _keepAlive.Leave();
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
            Volatile.Write(ref _streamCount, _streams.Count);
            // Queued under the lock that took the id: the peer requires OPEN ids to increase, so
            // two concurrent opens must not put their OPEN frames on the wire out of order.
            _send.EnqueuePriority(FrameCodec.EncodeOpen(id, target), wake: false);
            if (isLastId)
            {
                // That was the last id: the next would wrap, and a lower id is a protocol error (1002) at the peer.
                // GOAWAY right behind this OPEN makes callers use a fresh link or channel; this one closes when
                // its last stream ends (OnStreamClosed).
                _goAwaySent = _idsExhausted = true;
                _send.EnqueuePriority(FrameCodec.EncodeGoAway(GoAwayCode.StreamIdsExhausted, "stream ids exhausted", []), wake: false);
            }
        }
        _send.Wake(); // outside the lock: the write loop may run on this thread until its send is pending
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
        _send.EnqueueClose(code, reason);
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
            _closeInfo ??= new LinkCloseInfo(CloseCodes.AbnormalClosure, reason, ByPeer: false);
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

    /// <summary>
    /// Smallest DATA payload the read loop receives straight into a buffer of its own that the stream then keeps
    /// (message-based transports, with <see cref="MuxOptions.ReceiveDataDirect"/>): one copy per byte less on the receive path than receiving it into the loop's
    /// buffer and copying it into the stream's segment. Smaller frames are still packed into shared segments.
    /// </summary>
    internal const int DirectReceiveMinPayload = 16 * 1024;

    private async Task<LinkCloseInfo> ReadLoopAsync()
    {
        var frameBufferSize = ProtocolLimits.HeaderSize + ProtocolLimits.MaxFramePayload;
        var direct = _transport.IsMessageBased && Options.ReceiveDataDirect;
        byte[]? buffer = null;
        var filled = 0;
        long messageBytes = 0;
        // Receives take no token: the loop ends when the transport closes or is aborted (CloseAsync, keep-alive silence,
        // a failed send), never by _stop, which is cancelled only after this loop has returned. A token here would cost
        // every idle link two callback registrations (the WebSocket's and the pipe's) for the whole wait.

        // True after a DATA frame was received straight into its own buffer: a bulk sender's next frame is probably
        // one too, so receive only its header into the loop's buffer and its payload straight into the stream's.
        var headerOnly = false;
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
                    var wait = await _transport.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).ConfigureAwait(false);
                    if (wait.Closed)
                    {
                        return PeerClosed(wait);
                    }
                    buffer = ArrayPool<byte>.Shared.Rent(frameBufferSize);
                }

                var want = headerOnly && filled < ProtocolLimits.HeaderSize ? ProtocolLimits.HeaderSize - filled : buffer.Length - filled;
                var result = await _transport.ReceiveAsync(buffer.AsMemory(filled, want), CancellationToken.None).ConfigureAwait(false);
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
                _keepAlive.Touch();
                Interlocked.Add(ref _bytesIn, result.Count);
                filled += result.Count;
                messageBytes += result.Count;
                if (_transport.IsMessageBased && messageBytes > Options.MaxMessageSize)
                {
                    return Violation(new FrameViolation(CloseCodes.MessageTooBig, $"message larger than {Options.MaxMessageSize} bytes"));
                }

                var offset = 0;
                var endOfMessage = result.EndOfMessage;
                while (offset < filled)
                {
                    var status = FrameCodec.TryDecode(buffer.AsMemory(offset, filled - offset), ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
                    if (status == DecodeStatus.NeedMore)
                    {
                        if (direct && !endOfMessage && filled - offset >= ProtocolLimits.HeaderSize && IsLargeData(buffer.AsSpan(offset, ProtocolLimits.HeaderSize), out var streamId, out var length))
                        {
                            // A large DATA frame whose payload has not all arrived: receive the rest straight into the
                            // array the stream will keep (the part already here is copied once, as before).
                            var (outcome, endedMessage) = await ReceiveDataDirectAsync(buffer.AsMemory(offset + ProtocolLimits.HeaderSize, filled - offset - ProtocolLimits.HeaderSize), streamId, length, messageBytes).ConfigureAwait(false);
                            if (outcome is not null)
                            {
                                return outcome;
                            }
                            messageBytes = endedMessage < 0 ? messageBytes + (length - (filled - offset - ProtocolLimits.HeaderSize)) : 0;
                            offset = filled;
                            endOfMessage = endedMessage == 0;
                            headerOnly = true;
                        }
                        break;
                    }
                    if (status == DecodeStatus.Violation)
                    {
                        return Violation(violation!);
                    }
                    byte[]? none = null;
                    var problem = Dispatch(frame, ref none);
                    if (problem is not null)
                    {
                        return Violation(problem);
                    }
                    offset += consumed;
                    headerOnly = false;
                }

                var remaining = filled - offset;
                if (remaining > 0 && offset > 0)
                {
                    Buffer.BlockCopy(buffer, offset, buffer, 0, remaining);
                }
                filled = remaining;
                if (endOfMessage && _transport.IsMessageBased)
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

    private static bool IsLargeData(ReadOnlySpan<byte> header, out uint streamId, out int length)
    {
        streamId = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        var payload = BinaryPrimitives.ReadUInt32BigEndian(header[5..]);
        // TryDecode has already refused a length over the limit; stream id 0 is left to it too (a violation once complete).
        length = (int)Math.Min(payload, int.MaxValue);
        return (FrameType)header[0] == FrameType.Data && streamId != 0 && payload >= DirectReceiveMinPayload && payload <= ProtocolLimits.MaxFramePayload;
    }

    /// <summary>
    /// Completes one DATA frame by receiving its payload straight into a pooled array that the stream keeps as a
    /// segment (no copy from the loop's buffer). Returns how the link ends, or null and whether the message ended
    /// with the frame (0: it did, -1: more of the message follows).
    /// </summary>
    private async ValueTask<(LinkCloseInfo? Outcome, int EndedMessage)> ReceiveDataDirectAsync(ReadOnlyMemory<byte> head, uint streamId, int length, long messageBytes)
    {
        byte[]? payload = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            head.CopyTo(payload);
            var got = head.Length;
            var endOfMessage = false;
            while (got < length)
            {
                var result = await _transport.ReceiveAsync(payload.AsMemory(got, length - got), CancellationToken.None).ConfigureAwait(false);
                if (result.Closed)
                {
                    return (PeerClosed(result), 0);
                }
                if (result.IsText)
                {
                    return (Violation(new FrameViolation(CloseCodes.UnsupportedData, "text messages are not part of connect.v1; send binary frames")), 0);
                }
                _keepAlive.Touch();
                Interlocked.Add(ref _bytesIn, result.Count);
                got += result.Count;
                messageBytes += result.Count;
                if (messageBytes > Options.MaxMessageSize)
                {
                    return (Violation(new FrameViolation(CloseCodes.MessageTooBig, $"message larger than {Options.MaxMessageSize} bytes")), 0);
                }
                endOfMessage = result.EndOfMessage;
                if (endOfMessage && got < length)
                {
                    return (Violation(new FrameViolation(CloseCodes.ProtocolError, "a message ended inside a frame")), 0);
                }
            }
            Interlocked.Increment(ref _directDataFrames);
            var problem = Dispatch(new Frame(FrameType.Data, streamId, payload.AsMemory(0, length)), ref payload);
            return problem is not null ? (Violation(problem), 0) : (null, endOfMessage ? 0 : -1);
        }
        finally
        {
            if (payload is not null)
            {
                ArrayPool<byte>.Shared.Return(payload);
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
        _send.EnqueueClose(info.Code, info.Reason);
        return info;
    }

    /// <summary>
    /// Applies one frame; returns a violation that closes the link, or null. <paramref name="owned"/>, when not null,
    /// is a pooled array that holds a DATA frame's payload at its start: the stream keeps it (and sets it to null)
    /// instead of copying the payload; otherwise the caller returns it to the pool.
    /// </summary>
    private FrameViolation? Dispatch(in Frame frame, ref byte[]? owned)
    {
        switch (frame.Type)
        {
            case FrameType.Ping:
                if (_send.ControlQueueFull)
                {
                    return new FrameViolation(CloseCodes.PolicyViolation, "peer sends faster than it reads (control queue full)");
                }
                SendPing(FrameType.Pong, FrameCodec.ReadPing(frame.Payload.Span));
                _keepAlive.PeerPinged();
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
                var windowProblem = stream.OnData(frame.Payload.Span, out var afterFin, ref owned);
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
                Volatile.Write(ref _streamCount, _streams.Count);
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
            Volatile.Write(ref _streamCount, _streams.Count);
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

    internal void SendControl(byte[] frame) => _send.EnqueuePriority(frame);

    /// <summary>Queues FIN or RST: in order with the stream's DATA.</summary>
    internal void SendOrdered(byte[] frame) => _send.EnqueueOrdered(frame);

    internal void SendWindow(uint streamId, uint increment)
    {
        Span<byte> frame = stackalloc byte[ProtocolLimits.HeaderSize + 4];
        FrameCodec.WriteHeader(frame, FrameType.Window, streamId, 4);
        BinaryPrimitives.WriteUInt32BigEndian(frame[ProtocolLimits.HeaderSize..], increment);
        _send.EnqueuePriority(frame);
    }

    private void SendPing(FrameType type, ulong value)
    {
        Span<byte> frame = stackalloc byte[ProtocolLimits.HeaderSize + 8];
        FrameCodec.WriteHeader(frame, type, 0, 8);
        BinaryPrimitives.WriteUInt64BigEndian(frame[ProtocolLimits.HeaderSize..], value);
        _send.EnqueuePriority(frame);
    }

    /// <summary>Queues DATA (the caller has taken the credit, at most <paramref name="maxPayload"/>, its <see cref="DataChunk"/>); false when the link is closed.</summary>
    internal bool EnqueueData(uint streamId, in ReadOnlySequence<byte> payload, int maxPayload) => _send.EnqueueData(streamId, payload, maxPayload);

    /// <summary>Queues a pooled block that holds one whole DATA frame; the scheduler owns (and returns) it from here on, queued or not.</summary>
    internal bool EnqueueDataBlock(uint streamId, byte[] block, int length) => _send.EnqueueDataBlock(streamId, block, length);

    private void OnSendFailed(Exception e)
    {
        lock (_sync)
        {
            _closeInfo ??= new LinkCloseInfo(CloseCodes.AbnormalClosure, $"send failed: {e.Message}", ByPeer: true);
        }
    }

    private void OnKeepAliveSilence(TimeSpan silence) =>
        // Not awaited: CloseAsync returns Closed, which completes only after RunAsync has awaited the keep-alive loop.
        _ = CloseAsync(CloseCodes.KeepAliveTimeout, $"nothing received for {silence.TotalSeconds:0} s");
}
