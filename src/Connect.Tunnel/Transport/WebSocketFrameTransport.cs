using System.Net.WebSockets;

namespace Connect.Tunnel.Transport;

/// <summary>connect.v1 over a WebSocket: binary messages, each holding one or more whole frames.</summary>
public sealed class WebSocketFrameTransport(WebSocket socket, string remoteDescription) : IFrameTransport
{
    public bool IsMessageBased => true;

    public string RemoteDescription { get; } = remoteDescription;

    public WebSocket Socket { get; } = socket;

    public async ValueTask<TransportReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await Socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (result.MessageType == WebSocketMessageType.Close)
        {
            return TransportReceiveResult.PeerClosed((int?)Socket.CloseStatus, Socket.CloseStatusDescription);
        }
        return new TransportReceiveResult(result.Count, result.EndOfMessage, false, result.MessageType == WebSocketMessageType.Text);
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken) =>
        Socket.SendAsync(frames, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);

    public async ValueTask CloseAsync(int code, string reason, CancellationToken cancellationToken)
    {
        if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            // RFC 6455 5.5.1: the close reason must fit a control frame (123 bytes of UTF-8).
            await Socket.CloseOutputAsync((WebSocketCloseStatus)code, TrimReason(reason), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Abort() => Socket.Abort();

    internal static string TrimReason(string reason)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(reason) <= 123)
        {
            return reason;
        }
        var cut = Math.Min(reason.Length, 120);
        while (cut > 0 && System.Text.Encoding.UTF8.GetByteCount(reason.AsSpan(0, cut)) > 120)
        {
            cut--;
        }
        return reason[..cut] + "...";
    }
}
