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

    private static bool LooksLikeHttp(ReadOnlySpan<byte> head) =>
        head.StartsWith("GET "u8) || head.StartsWith("HEAD "u8) || head.StartsWith("POST "u8) || head.StartsWith("PUT "u8) || head.StartsWith("DELETE "u8);
}
