using System.Buffers;
using System.Net.Sockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Piping;

/// <summary>A tunnel stream as a splice end: half-close is FIN, abort is RST.</summary>
public sealed class MuxStreamEnd(MuxStream stream, ResetCode abortCode = ResetCode.ConnectionReset) : DuplexEnd
{
    public MuxStream Stream { get; } = stream;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => Stream.ReadAsync(buffer, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => Stream.WriteAsync(data, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken) => Stream.WriteAsync(data, cancellationToken);

    public override ValueTask ShutdownWriteAsync() => Stream.CompleteWritesAsync();

    /// <summary>Any source can be read straight into the stream's outbound send block (one copy less than through a splice buffer).</summary>
    public override bool CanWriteFrom => true;

    public override ValueTask<int> WriteFromAsync(DuplexEnd source, CancellationToken cancellationToken) =>
        Stream.WriteFromAsync(source.ReadAsync, cancellationToken);

    public override void Abort(string reason) => Stream.Reset(abortCode, reason);

    public override ValueTask DisposeAsync() => Stream.DisposeAsync();
}

/// <summary>A connected TCP socket as a splice end: half-close is shutdown(SHUT_WR), abort is a TCP RST.</summary>
public sealed class SocketEnd(Socket socket) : DuplexEnd
{
    private int _closed;

    public Socket Socket { get; } = socket;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (data.Length > 0)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    public override ValueTask ShutdownWriteAsync()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The peer is already gone; the read side will say so.
        }
        return ValueTask.CompletedTask;
    }

    public override void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            try
            {
                // Linger 0 turns close into a TCP RST, so the peer sees an abort, not a clean end.
                Socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            Socket.Dispose();
        }
    }

    public override ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Socket.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
