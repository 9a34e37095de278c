using System.Net.WebSockets;

namespace Connect.Host.Tunnels;

/// <summary>
/// Passes everything to the accepted WebSocket except <see cref="Abort"/>, which it defers by a short grace once a
/// close frame has been sent. The multiplexer aborts the transport right after a violation's close frame (RFC 6455
/// §7.1.7 allows dropping the connection), but Kestrel's abort discards output the socket has not written yet, so the
/// violating agent saw 1006 instead of the close code and reason. Returning from the endpoint lets Kestrel flush and
/// close the upgraded connection itself; the deferred abort is only a backstop.
/// </summary>
internal sealed class CloseFlushingWebSocket(WebSocket inner, TimeSpan grace) : WebSocket
{
    private int _aborted;

    public override WebSocketCloseStatus? CloseStatus => inner.CloseStatus;

    public override string? CloseStatusDescription => inner.CloseStatusDescription;

    public override WebSocketState State => inner.State;

    public override string? SubProtocol => inner.SubProtocol;

    public override void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        if (inner.State != WebSocketState.CloseSent)
        {
            inner.Abort();
            return;
        }
        _ = Task.Delay(grace).ContinueWith(_ => inner.Abort(), TaskScheduler.Default);
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        inner.CloseAsync(closeStatus, statusDescription, cancellationToken);

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override void Dispose() => inner.Dispose();

    public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken) =>
        inner.ReceiveAsync(buffer, cancellationToken);

    public override ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        inner.ReceiveAsync(buffer, cancellationToken);

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, WebSocketMessageFlags messageFlags, CancellationToken cancellationToken) =>
        inner.SendAsync(buffer, messageType, messageFlags, cancellationToken);
}
