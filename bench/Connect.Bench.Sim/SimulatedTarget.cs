using System.Text;
using Connect.Tunnel.Multiplexing;

namespace Connect.Bench.Sim;

/// <summary>
/// The in-process target every simulated agent "dials": a request that starts like HTTP gets a tiny 200 answer
/// (body <c>ok SESSION</c>) and the stream is closed; anything else is echoed until the peer half-closes.
/// No socket is opened, so the simulator measures the cluster, not a target.
/// </summary>
public static class SimulatedTarget
{
    /// <summary>How long a served HTTP stream waits for the proxy side to end before it is reset (bounded: a bench tool never hangs).</summary>
    private static readonly TimeSpan PeerEndTimeout = TimeSpan.FromSeconds(30);

    public static async Task ServeAsync(MuxStream stream, string session)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var first = await stream.ReadAsync(buffer).ConfigureAwait(false);
            if (first == 0)
            {
                await stream.CompleteWritesAsync().ConfigureAwait(false);
                return;
            }
            if (LooksLikeHttp(buffer.AsSpan(0, first)))
            {
                // Reads only the head it got: enough for GET/HEAD without a body, which is what the tests send.
                var body = Encoding.ASCII.GetBytes($"ok {session}\n");
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(head).ConfigureAwait(false);
                await stream.WriteAsync(body).ConfigureAwait(false);
                await stream.CompleteWritesAsync().ConfigureAwait(false);
                // Like a real server behind the agent: it closes (FIN) and the stream ends when the proxy side ends
                // too. Disposing at once, before the peer's FIN, resets the stream ("closed before both sides
                // finished"), and that RST can overtake the answer at the proxy: a 502 no real target causes.
                await DrainUntilPeerEndsAsync(stream, buffer).ConfigureAwait(false);
                return;
            }
            await stream.WriteAsync(buffer.AsMemory(0, first)).ConfigureAwait(false);
            int read;
            while ((read = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
            }
            await stream.CompleteWritesAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The stream or its link went away: nothing to answer.
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task DrainUntilPeerEndsAsync(MuxStream stream, byte[] buffer)
    {
        using var bound = new CancellationTokenSource(PeerEndTimeout);
        while (await stream.ReadAsync(buffer, bound.Token).ConfigureAwait(false) > 0)
        {
        }
    }

    private static bool LooksLikeHttp(ReadOnlySpan<byte> head) =>
        head.StartsWith("GET "u8) || head.StartsWith("HEAD "u8) || head.StartsWith("POST "u8) || head.StartsWith("PUT "u8) || head.StartsWith("DELETE "u8);
}
