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

    /// <summary>Says "no more bytes from me" while still reading (TCP shutdown(SHUT_WR), FIN frame).</summary>
    public abstract ValueTask ShutdownWriteAsync();

    /// <summary>Tears the end down at once, telling its peer it was not a clean end where the medium allows (TCP RST, RST frame).</summary>
    public abstract void Abort(string reason);

    /// <summary>Releases what the end holds once the splice is done.</summary>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
