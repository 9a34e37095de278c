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
public sealed class ProxyConnectionMiddleware(ConnectTunneler tunneler, IOptions<ProxyOptions> options, LimitMetrics limits, ILogger<ProxyConnectionMiddleware> logger)
{
    public const string ListenerItemKey = "connect.listener";
    public const string ProxyListener = "proxy";

    private static ReadOnlySpan<byte> ConnectPrefix => "CONNECT "u8;

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        connection.Items[ListenerItemKey] = ProxyListener;
        // No drain check here: a draining node keeps serving what it accepts (with Connection: close), and refuses new
        // connections by closing its listening socket (NodeLifecycle), never by accepting and then aborting.
        var settings = options.Value;
        var remote = connection.RemoteEndPoint?.ToString() ?? "?";

        // One deadline per request head, not per read: a slowloris client that dribbles a byte at a time must still
        // finish the whole head within RequestHeadTimeout.
        CancellationTokenSource? headTimeout = null;
        try
        {
            while (true)
            {
                if (headTimeout is null)
                {
                    headTimeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
                    headTimeout.CancelAfter(settings.RequestHeadTimeout);
                }
                if (!await ServeNextAsync(connection, next, headTimeout.Token, settings, remote).ConfigureAwait(false))
                {
                    return;
                }
                headTimeout.Dispose();
                headTimeout = null;
            }
        }
        finally
        {
            headTimeout?.Dispose();
        }
    }

    /// <summary>Reads one request head; returns true when a CONNECT was answered with an error and the connection may carry another request.</summary>
    private async Task<bool> ServeNextAsync(ConnectionContext connection, ConnectionDelegate next, CancellationToken headToken, ProxyOptions settings, string remote)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            ReadResult read;
            try
            {
                read = await input.ReadAsync(headToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
            {
                limits.Hit(Limits.RequestHeadTimeout);
                await RejectAsync(connection, remote, HttpStatusCode.RequestTimeout, ProxyError.RequestTimeout, $"no complete request head within {settings.RequestHeadTimeout.TotalSeconds:0.###} s").ConfigureAwait(false);
                return false;
            }
            catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
            {
                return false;
            }

            var buffer = read.Buffer;
            if (buffer.IsEmpty && read.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return false;
            }
            var first = buffer.FirstSpan;
            if (first.Length > 0 && first[0] == 0x16)
            {
                input.AdvanceTo(buffer.End);
                await RejectAsync(connection, remote, HttpStatusCode.BadRequest, ProxyError.BadRequest, "this is a plain-HTTP proxy port but a TLS handshake arrived; configure the proxy as http://, not https://").ConfigureAwait(false);
                return false;
            }

            var prefixLength = Math.Min(ConnectPrefix.Length, (int)buffer.Length);
            var prefix = buffer.Slice(0, prefixLength).ToArray();
            if (!ConnectPrefix[..prefixLength].SequenceEqual(prefix))
            {
                // Not CONNECT: un-read everything (consumed = examined = start) and let Kestrel's HTTP stack serve it.
                input.AdvanceTo(buffer.Start);
                await next(connection).ConfigureAwait(false);
                return false;
            }
            if (prefixLength < ConnectPrefix.Length)
            {
                if (read.IsCompleted)
                {
                    input.AdvanceTo(buffer.End);
                    return false;
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
                    return false;
                case ConnectRequestParser.Status.Error:
                    input.AdvanceTo(buffer.End);
                    var error = parsed.ErrorStatus switch
                    {
                        HttpStatusCode.RequestUriTooLong => ProxyError.RequestLineTooLong,
                        HttpStatusCode.RequestHeaderFieldsTooLarge => ProxyError.RequestHeadTooLarge,
                        _ => ProxyError.BadRequest,
                    };
                    if (error == ProxyError.RequestLineTooLong)
                    {
                        limits.Hit(Limits.RequestLine);
                    }
                    else if (error == ProxyError.RequestHeadTooLarge)
                    {
                        limits.Hit(Limits.RequestHead);
                    }
                    await RejectAsync(connection, remote, parsed.ErrorStatus, error, parsed.ErrorReason!).ConfigureAwait(false);
                    return false;
            }

            input.AdvanceTo(buffer.GetPosition(parsed.Consumed));
            // The open is cancelled with the connection (a client gone before its 200 wastes no dial), the tunnel itself
            // is not: Kestrel fires ConnectionClosed on the client's FIN, and a half-closed client still reads its bytes.
            // After a CONNECT the connection is done either way (a refusal closes it).
            await tunneler.HandleAsync(connection.Transport, connection.Abort, parsed.Request!, remote, connection.ConnectionClosed, CancellationToken.None).ConfigureAwait(false);
            return false;
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
