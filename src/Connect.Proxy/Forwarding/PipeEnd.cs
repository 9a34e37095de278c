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
    private volatile bool _outputCompleted;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await ReadInputAsync(cancellationToken).ConfigureAwait(false) is not { } result)
            {
                return 0;
            }
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

    /// <summary>
    /// Once this side completed its output (the tunnel finished), Kestrel closes the socket and ends the input with
    /// a ConnectionAbortedException: that is how a CONNECT tunnel ends normally, so it reads as end of stream (FIN to
    /// the agent) rather than as an error (RST, logged by the agent as "stream reset (ConnectionReset)").
    /// </summary>
    private async ValueTask<ReadResult?> ReadInputAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (_outputCompleted && !cancellationToken.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            return null;
        }
    }

    /// <summary>Output buffer asked of Kestrel's pipe per read from the tunnel: one DATA frame or more.</summary>
    private const int FillSize = 32 * 1024;

    public override bool CanReadInto => true;

    public override bool CanWriteFrom => true;

    /// <summary>Hands the client's bytes from Kestrel's input pipe straight to the tunnel (the mux copies them once, into its frames).</summary>
    public override async ValueTask<int> ReadIntoAsync(DuplexEnd destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await ReadInputAsync(cancellationToken).ConfigureAwait(false) is not { } result)
            {
                return 0;
            }
            var data = result.Buffer;
            if (!data.IsEmpty)
            {
                // Measured before AdvanceTo: after it the sequence's segments belong to the pipe again.
                var length = (int)Math.Min(data.Length, int.MaxValue);
                try
                {
                    // The whole sequence at once: a tunnel stream packs Kestrel's 4 KiB segments into full DATA frames.
                    await destination.WriteAsync(data, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    pipe.Input.AdvanceTo(data.End);
                }
                return length;
            }
            pipe.Input.AdvanceTo(data.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return 0;
            }
        }
    }

    /// <summary>Reads from the tunnel straight into Kestrel's output pipe, then flushes (no splice buffer in between).</summary>
    public override async ValueTask<int> WriteFromAsync(DuplexEnd source, CancellationToken cancellationToken)
    {
        var memory = pipe.Output.GetMemory(FillSize);
        var read = await source.ReadAsync(memory, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return 0;
        }
        pipe.Output.Advance(read);
        var result = await pipe.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the proxy client closed the connection");
        }
        return read;
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
        _outputCompleted = true;
        await pipe.Output.FlushAsync().ConfigureAwait(false);
        await pipe.Output.CompleteAsync().ConfigureAwait(false);
    }

    public override void Abort(string reason) => abort();
}
