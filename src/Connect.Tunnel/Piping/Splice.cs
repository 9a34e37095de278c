using System.Buffers;

namespace Connect.Tunnel.Piping;

/// <summary>How a splice ended.</summary>
public sealed record SpliceResult(long BytesAToB, long BytesBToA, bool Clean, string? Error);

/// <summary>
/// Pumps bytes both ways between two ends with half-close: when A finishes sending, B is shut for writing,
/// and the other direction keeps flowing until it finishes too. An error in either direction aborts both
/// ends, so neither is left half-open; each end is disposed exactly once.
/// </summary>
public static class Splice
{
    public const int BufferSize = 32 * 1024;

    public static async Task<SpliceResult> RunAsync(DuplexEnd a, DuplexEnd b, CancellationToken cancellationToken = default)
    {
        var failure = new Failure();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var aToB = PumpAsync(a, b, failure, linked);
        var bToA = PumpAsync(b, a, failure, linked);
        await Task.WhenAll(aToB, bToA).ConfigureAwait(false);
        if (failure.Message is not null)
        {
            a.Abort(failure.Message);
            b.Abort(failure.Message);
        }
        await a.DisposeAsync().ConfigureAwait(false);
        await b.DisposeAsync().ConfigureAwait(false);
        return new SpliceResult(await aToB.ConfigureAwait(false), await bToA.ConfigureAwait(false), failure.Message is null, failure.Message);
    }

    private sealed class Failure
    {
        private string? _message;

        public string? Message => Volatile.Read(ref _message);

        public void Set(string message) => Interlocked.CompareExchange(ref _message, message, null);
    }

    private static async Task<long> PumpAsync(DuplexEnd from, DuplexEnd to, Failure failure, CancellationTokenSource stop)
    {
        byte[]? buffer = null;
        long total = 0;
        try
        {
            // An end with its own buffers (a Kestrel pipe, a tunnel stream's send blocks) moves bytes without the splice
            // buffer: one copy less per byte. A source that hands over its own buffers (a Kestrel pipe) goes first: it
            // passes whole multi-segment reads, which a tunnel stream packs into full frames.
            if (to.CanWriteFrom || from.CanReadInto)
            {
                while (true)
                {
                    var moved = from.CanReadInto
                        ? await from.ReadIntoAsync(to, stop.Token).ConfigureAwait(false)
                        : await to.WriteFromAsync(from, stop.Token).ConfigureAwait(false);
                    if (moved == 0)
                    {
                        await to.ShutdownWriteAsync().ConfigureAwait(false);
                        return total;
                    }
                    total += moved;
                }
            }
            buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            while (true)
            {
                var read = await from.ReadAsync(buffer, stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    await to.ShutdownWriteAsync().ConfigureAwait(false);
                    return total;
                }
                await to.WriteAsync(buffer.AsMemory(0, read), stop.Token).ConfigureAwait(false);
                total += read;
            }
        }
        catch (Exception e)
        {
            failure.Set(e is OperationCanceledException ? "cancelled" : e.Message);
            // Unblock the other direction: it may be waiting on a read that will now never finish.
            from.Abort(failure.Message!);
            to.Abort(failure.Message!);
            await stop.CancelAsync().ConfigureAwait(false);
            return total;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }
}
