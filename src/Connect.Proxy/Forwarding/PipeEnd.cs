using System.Buffers;
using System.IO.Pipelines;
using Connect.Tunnel.Piping;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// A Kestrel connection's raw pipes as a splice end. Kestrel's socket transport closes the whole socket when
/// its output completes, so "shutdown write" here ends the client connection once every byte is sent.
/// </summary>
public sealed class PipeEnd(IDuplexPipe pipe, Action abort) : DuplexEnd
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var data = result.Buffer;
            if (!data.IsEmpty)
            {
                var take = (int)Math.Min(data.Length, buffer.Length);
                data.Slice(0, take).CopyTo(buffer.Span);
                pipe.Input.AdvanceTo(data.GetPosition(take));
                return take;
            }
            pipe.Input.AdvanceTo(data.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return 0;
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var result = await pipe.Output.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the proxy client closed the connection");
        }
    }

    public override async ValueTask ShutdownWriteAsync()
    {
        await pipe.Output.FlushAsync().ConfigureAwait(false);
        await pipe.Output.CompleteAsync().ConfigureAwait(false);
    }

    public override void Abort(string reason) => abort();
}
