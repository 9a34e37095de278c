using System.IO.Pipelines;
using System.Buffers;
using System.Net;
using Connect.Proxy.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// Kestrel connection middleware on the proxy port. It looks at the first bytes of each request: CONNECT is
/// served here on the raw pipe (Kestrel's HTTP stack cannot hand out an opaque stream after a 200), a TLS
/// ClientHello gets a plain 400 that says which port speaks what, and everything else goes to Kestrel's
/// HTTP/1.1 stack untouched, where <see cref="ForwardProxyMiddleware"/> forwards absolute-form requests.
/// </summary>
public sealed class ProxyConnectionMiddleware(ConnectTunneler tunneler, ProxyDrain drain, IOptions<ProxyOptions> options, ILogger<ProxyConnectionMiddleware> logger)
{
    public const string ListenerItemKey = "connect.listener";
    public const string ProxyListener = "proxy";

    private static ReadOnlySpan<byte> ConnectPrefix => "CONNECT "u8;

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        connection.Items[ListenerItemKey] = ProxyListener;
        if (drain.IsClosed)
        {
            // The node is draining and the grace for load balancers is over: this port takes no new connections.
            connection.Abort(new ConnectionAbortedException("node draining"));
            return;
        }
        var settings = options.Value;
        var input = connection.Transport.Input;
        var remote = connection.RemoteEndPoint?.ToString() ?? "?";

        while (true)
        {
            using var headTimeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
            headTimeout.CancelAfter(settings.RequestHeadTimeout);
            ReadResult read;
            try
            {
                read = await input.ReadAsync(headTimeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
            {
                await RejectAsync(connection, remote, HttpStatusCode.RequestTimeout, ProxyError.BadRequest, $"no complete request head within {settings.RequestHeadTimeout.TotalSeconds:0} s").ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
            {
                return;
            }

            var buffer = read.Buffer;
            if (buffer.IsEmpty && read.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return;
            }
            var first = buffer.FirstSpan;
            if (first.Length > 0 && first[0] == 0x16)
            {
                input.AdvanceTo(buffer.End);
                await RejectAsync(connection, remote, HttpStatusCode.BadRequest, ProxyError.BadRequest, "this is a plain-HTTP proxy port but a TLS handshake arrived; configure the proxy as http://, not https://").ConfigureAwait(false);
                return;
            }

            var prefixLength = Math.Min(ConnectPrefix.Length, (int)buffer.Length);
            var prefix = buffer.Slice(0, prefixLength).ToArray();
            if (!ConnectPrefix[..prefixLength].SequenceEqual(prefix))
            {
                // Not CONNECT: un-read everything (consumed = examined = start) and let Kestrel's HTTP stack serve it.
                input.AdvanceTo(buffer.Start);
                await next(connection).ConfigureAwait(false);
                return;
            }
            if (prefixLength < ConnectPrefix.Length)
            {
                if (read.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    return;
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }

            var parsed = ConnectRequestParser.TryParse(buffer, settings.MaxRequestLineBytes, settings.MaxRequestHeadBytes);
            switch (parsed.Status)
            {
                case ConnectRequestParser.Status.NeedMore when !read.IsCompleted:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                case ConnectRequestParser.Status.NeedMore:
                    input.AdvanceTo(buffer.End);
                    return;
                case ConnectRequestParser.Status.Error:
                    input.AdvanceTo(buffer.End);
                    await RejectAsync(connection, remote, parsed.ErrorStatus, ProxyError.BadRequest, parsed.ErrorReason!).ConfigureAwait(false);
                    return;
            }

            input.AdvanceTo(buffer.GetPosition(parsed.Consumed));
            // Not ConnectionClosed: Kestrel fires it on the client's FIN, and a half-closed client still reads the reply.
            var keepAlive = await tunneler.HandleAsync(connection.Transport, connection.Abort, parsed.Request!, remote, CancellationToken.None).ConfigureAwait(false);
            if (!keepAlive)
            {
                return;
            }
        }
    }

    private async Task RejectAsync(ConnectionContext connection, string remote, HttpStatusCode status, ProxyError error, string reason)
    {
        ProxyLog.ConnectionRejected(logger, remote, (int)status, reason);
        try
        {
            await RawResponses.WriteErrorAsync(connection.Transport.Output, status, error, reason, options.Value.Realm, close: true).ConfigureAwait(false);
            await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ConnectionResetException)
        {
            // The client is already gone.
        }
    }
}
