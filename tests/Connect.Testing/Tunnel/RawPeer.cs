using System.Net.Sockets;
using System.Net.WebSockets;
using Connect.Tunnel.Frames;

namespace Connect.Testing.Tunnel;

/// <summary>A frame read by a <see cref="RawPeer"/>, copied out of its buffer.</summary>
public sealed record RawFrame(FrameType Type, uint StreamId, byte[] Payload);

/// <summary>
/// The far end of a link driven by hand: writes any bytes (valid or not) and reads back what the
/// multiplexer sends, including the WebSocket close code. Used to inject protocol violations.
/// </summary>
public sealed class RawPeer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream? _stream;
    private byte[] _pending = new byte[256 * 1024];
    private int _pendingCount;
    private bool _closed;

    private RawPeer(TransportKind kind, Socket socket, bool isDialer)
    {
        Kind = kind;
        _socket = socket;
        if (kind == TransportKind.WebSocket)
        {
            WebSocket = Loopback.WebSocketOn(socket, isServer: !isDialer);
        }
        else
        {
            _stream = new NetworkStream(socket, ownsSocket: true);
        }
    }

    public TransportKind Kind { get; }

    public WebSocket? WebSocket { get; }

    /// <summary>The close code the multiplexer sent (WebSocket), once <see cref="ReadFrameAsync"/> saw the close.</summary>
    public int? CloseCode { get; private set; }

    public string? CloseReason { get; private set; }

    public static RawPeer On(TransportKind kind, Socket socket, bool isDialer) => new(kind, socket, isDialer);

    /// <summary>Sends bytes: one binary message on a WebSocket, plain bytes on a stream.</summary>
    public async Task SendAsync(params byte[][] frames)
    {
        var bytes = frames.SelectMany(f => f).ToArray();
        if (WebSocket is not null)
        {
            await WebSocket.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).WaitAsync(Timeouts.Default);
        }
        else
        {
            await _stream!.WriteAsync(bytes).AsTask().WaitAsync(Timeouts.Default);
        }
    }

    /// <summary>Sends part of a binary WebSocket message.</summary>
    public Task SendFragmentAsync(byte[] bytes, bool endOfMessage) =>
        WebSocket!.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage, CancellationToken.None).WaitAsync(Timeouts.Default);

    public Task SendTextAsync(string text) =>
        WebSocket!.SendAsync(System.Text.Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Timeouts.Default);

    /// <summary>Ends our side: a WebSocket close (1000) or a TCP half-close.</summary>
    public async Task CloseOutputAsync()
    {
        if (WebSocket is not null)
        {
            if (WebSocket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await WebSocket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "raw peer done", CancellationToken.None).WaitAsync(Timeouts.Default);
            }
        }
        else
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
    }

    /// <summary>The next frame from the multiplexer, or null when the link closed (see <see cref="CloseCode"/>).</summary>
    public async Task<RawFrame?> ReadFrameAsync()
    {
        while (true)
        {
            var status = FrameCodec.TryDecode(_pending.AsMemory(0, _pendingCount), ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
            if (status == DecodeStatus.Violation)
            {
                throw new InvalidDataException($"the multiplexer sent a bad frame: {violation}");
            }
            if (status == DecodeStatus.Frame)
            {
                var copy = new RawFrame(frame.Type, frame.StreamId, frame.Payload.ToArray());
                Buffer.BlockCopy(_pending, consumed, _pending, 0, _pendingCount - consumed);
                _pendingCount -= consumed;
                return copy;
            }
            if (_closed)
            {
                return null;
            }
            if (_pendingCount == _pending.Length)
            {
                Array.Resize(ref _pending, _pending.Length * 2);
            }
            if (WebSocket is not null)
            {
                var result = await WebSocket.ReceiveAsync(_pending.AsMemory(_pendingCount), CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _closed = true;
                    CloseCode = (int?)WebSocket.CloseStatus;
                    CloseReason = WebSocket.CloseStatusDescription;
                    await CloseOutputAsync();
                    continue;
                }
                _pendingCount += result.Count;
            }
            else
            {
                int read;
                try
                {
                    read = await _stream!.ReadAsync(_pending.AsMemory(_pendingCount)).AsTask().WaitAsync(Timeouts.Default);
                }
                catch (IOException)
                {
                    read = 0; // Reset by the multiplexer's abort: closed all the same.
                }
                if (read == 0)
                {
                    _closed = true;
                    continue;
                }
                _pendingCount += read;
            }
        }
    }

    /// <summary>Skips PING/PONG/WINDOW and returns the next other frame; fails when the link closes first.</summary>
    public async Task<RawFrame> ExpectFrameAsync(FrameType type)
    {
        while (true)
        {
            var frame = await ReadFrameAsync() ?? throw new InvalidOperationException($"link closed ({CloseCode} {CloseReason}) while waiting for {type}");
            if (frame.Type == type)
            {
                return frame;
            }
            if (frame.Type is not (FrameType.Ping or FrameType.Pong or FrameType.Window))
            {
                throw new InvalidOperationException($"expected {type}, got {frame.Type} on stream {frame.StreamId}");
            }
        }
    }

    /// <summary>Reads until the link closes; returns the WebSocket close code (null on a stream).</summary>
    public async Task<int?> ExpectCloseAsync()
    {
        while (await ReadFrameAsync() is not null)
        {
        }
        return CloseCode;
    }

    public ValueTask DisposeAsync()
    {
        WebSocket?.Abort();
        WebSocket?.Dispose();
        _stream?.Dispose();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
