using System.Net.Sockets;

namespace Connect.Tunnel.Transport;

/// <summary>connect.v1 over a plain byte stream (a TCP connection between two nodes): frames back to back.</summary>
public sealed class StreamFrameTransport(Stream stream, string remoteDescription, Socket? socket = null) : IFrameTransport
{
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    public bool IsMessageBased => false;

    public string RemoteDescription { get; } = remoteDescription;

    public async ValueTask<TransportReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (read == 0 && buffer.Length > 0)
        {
            return TransportReceiveResult.PeerClosed(null, "end of stream");
        }
        return new TransportReceiveResult(read, false, false);
    }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await stream.WriteAsync(frames, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public ValueTask CloseAsync(int code, string reason, CancellationToken cancellationToken)
    {
        try
        {
            socket?.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone: nothing left to close gracefully.
        }
        return ValueTask.CompletedTask;
    }

    public void Abort()
    {
        socket?.Dispose();
        stream.Dispose();
    }
}
