using System.Buffers;

namespace Connect.Tunnel.Piping;

/// <summary>
/// One end of a two-way byte pipe: something to read from, write to, half-close and abort.
/// A socket, a tunnel stream and a Kestrel connection each adapt to it, so one <see cref="Splice"/> serves all.
/// </summary>
public abstract class DuplexEnd
{
    /// <summary>Reads up to buffer.Length bytes; 0 means the other side finished sending (half-close).</summary>
    public abstract ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Writes a multi-segment buffer; ends that frame their output (a tunnel stream) override it to pack segments into fewer frames.</summary>
    public virtual async ValueTask WriteAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        foreach (var segment in data)
        {
            await WriteAsync(segment, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Says "no more bytes from me" while still reading (TCP shutdown(SHUT_WR), FIN frame).</summary>
    public abstract ValueTask ShutdownWriteAsync();

    /// <summary>Tears the end down at once, telling its peer it was not a clean end where the medium allows (TCP RST, RST frame).</summary>
    public abstract void Abort(string reason);

    /// <summary>True when <see cref="ReadIntoAsync"/> can hand this end's received bytes to another end from its own buffers (no splice buffer, no copy).</summary>
    public virtual bool CanReadInto => false;

    /// <summary>Waits for bytes and writes all that are available to <paramref name="destination"/>; returns how many, 0 when this end finished sending.</summary>
    public virtual ValueTask<int> ReadIntoAsync(DuplexEnd destination, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <summary>True when <see cref="WriteFromAsync"/> can read from another end straight into this end's own output buffer.</summary>
    public virtual bool CanWriteFrom => false;

    /// <summary>Reads once from <paramref name="source"/> into this end's output buffer and sends it; returns how many bytes, 0 when the source finished.</summary>
    public virtual ValueTask<int> WriteFromAsync(DuplexEnd source, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <summary>Releases what the end holds once the splice is done.</summary>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
