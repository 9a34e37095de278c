using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using Connect.Proxy.Configuration;
using Connect.Tunnel.Piping;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// Serves one parsed CONNECT (RFC 9110 section 9.3.6): authorise, open a tunnel stream to the authority,
/// answer <c>200 Connection Established</c>, then splice raw bytes both ways until both sides finish.
/// Failures before the 200 are answered with a status that says why and <c>Connection: close</c>, and the connection
/// ends: a client that sent its tunnel bytes right behind the CONNECT (as TLS clients do) must never have them read as
/// its next request. After the 200, a failure aborts the connection.
/// </summary>
public sealed class ConnectTunneler(ProxyGate gate, ProxyDrain drain, IOptions<ProxyOptions> options, ProxyMetrics metrics, LimitMetrics limits, AccessLog accessLog, TimeProvider time, ILogger<ConnectTunneler> logger)
{
    /// <summary>How long a refused CONNECT's connection is read (and the bytes dropped) after the answer, so closing it does not reset the answer away.</summary>
    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(2);

    /// <summary>Most bytes read and dropped while lingering.</summary>
    private const int LingerBytes = 64 * 1024;

    /// <summary>
    /// Serves the CONNECT; when it returns, the connection is done (the caller closes it).
    /// <paramref name="openCancellation"/> is the client connection's: a client that goes away while its stream is being
    /// opened cancels the open. <paramref name="cancellationToken"/> bounds the whole tunnel.
    /// </summary>
    public async Task HandleAsync(IDuplexPipe transport, Action abort, ConnectRequest request, string remote, CancellationToken openCancellation, CancellationToken cancellationToken)
    {
        // One access-log line per tunnel, however it ends.
        var access = accessLog.Begin("CONNECT", request.Authority);
        try
        {
            await HandleCoreAsync(transport, abort, request, access, openCancellation, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            accessLog.Complete(access);
        }
    }

    private async Task HandleCoreAsync(IDuplexPipe transport, Action abort, ConnectRequest request, AccessLog.Pending access, CancellationToken openCancellation, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        metrics.Started();
        var verdict = gate.Authorize(request.ProxyAuthorization);
        if (verdict.Error != ProxyError.None)
        {
            await FailAsync(transport, verdict.SessionId ?? "-", request.Authority, verdict.Error, verdict.Reason, started, access).ConfigureAwait(false);
            return;
        }
        var session = verdict.SessionId!;
        access.Session = session;
        using var tracked = drain.Track(session, $"CONNECT {request.Authority}", abort);

        Tunnel.Multiplexing.MuxStream stream;
        var openTimeout = options.Value.StreamOpenTimeout;
        using (var open = CancellationTokenSource.CreateLinkedTokenSource(openCancellation, cancellationToken))
        using (var deadline = new CancellationTokenSource(openTimeout, time))
        using (var both = CancellationTokenSource.CreateLinkedTokenSource(open.Token, deadline.Token))
        {
            try
            {
                stream = await gate.OpenAsync(session, request.Authority, both.Token).ConfigureAwait(false);
                access.LinkNode = accessLog.LinkNodeOf(session, stream);
            }
            catch (TunnelConnectException e)
            {
                await FailAsync(transport, session, request.Authority, e.Error, e.Message, started, access).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !open.IsCancellationRequested)
            {
                await FailAsync(transport, session, request.Authority, ProxyError.ClusterTimeout, $"no tunnel stream to {request.Authority} within {openTimeout.TotalSeconds:0.###} s", started, access).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                access.Error = ProxyError.ClientAborted;
                metrics.Finished("connect", ProxyError.ClientAborted, Stopwatch.GetElapsedTime(started));
                abort();
                return;
            }
        }

        ProxyLog.TunnelOpened(logger, session, request.Authority, stream.Id);
        var streamId = stream.Id;
        try
        {
            await transport.Output.WriteAsync(RawResponses.ConnectionEstablished, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            stream.Reset(Tunnel.Frames.ResetCode.Cancel, "proxy client went away");
            access.Error = ProxyError.ClientAborted;
            metrics.Finished("connect", ProxyError.ClientAborted, Stopwatch.GetElapsedTime(started));
            return;
        }
        access.Status = 200;
        access.Detail = $"stream {streamId}";
        // Idle stream timeout: a tunnel with no byte either way for StreamIdleTimeout is reset (RST IdleTimeout tells the
        // agent to drop its target connection) and the client connection is aborted, so neither end holds it forever.
        var idleTimeout = options.Value.StreamIdleTimeout;
        SpliceResult result;
        var guard = new IdleGuard(idleTimeout, time, () =>
        {
            stream.Reset(Tunnel.Frames.ResetCode.IdleTimeout, $"no bytes either way for {idleTimeout.TotalSeconds:0.###} s");
            abort();
        });
        await using (guard.ConfigureAwait(false))
        {
            result = await Splice.RunAsync(guard.Watch(new PipeEnd(transport, abort)), guard.Watch(new MuxStreamEnd(stream)), cancellationToken).ConfigureAwait(false);
        }
        metrics.Bytes(result.BytesAToB, result.BytesBToA);
        (access.BytesUp, access.BytesDown) = (result.BytesAToB, result.BytesBToA);
        if (guard.Expired)
        {
            limits.Hit(Limits.StreamIdle);
            ProxyLog.TunnelIdle(logger, session, request.Authority, streamId, idleTimeout.TotalSeconds);
            access.Error = ProxyError.IdleTimeout;
            metrics.Finished("connect", ProxyError.IdleTimeout, Stopwatch.GetElapsedTime(started));
        }
        else if (result.Clean)
        {
            ProxyLog.TunnelClosed(logger, session, request.Authority, streamId, result.BytesAToB, result.BytesBToA);
            metrics.Finished("connect", ProxyError.None, Stopwatch.GetElapsedTime(started));
        }
        else
        {
            ProxyLog.TunnelAborted(logger, session, request.Authority, streamId, result.Error ?? "unknown");
            (access.Error, access.Detail) = (ProxyError.UpstreamFailed, $"stream {streamId}: {result.Error}");
            metrics.Finished("connect", ProxyError.UpstreamFailed, Stopwatch.GetElapsedTime(started));
        }
    }

    private async Task FailAsync(IDuplexPipe transport, string session, string target, ProxyError error, string reason, long started, AccessLog.Pending access)
    {
        var status = ProxyErrors.StatusOf(error);
        (access.Session, access.Status, access.Error, access.Detail) = (session, (int)status, error, reason);
        ProxyLog.RequestFailed(logger, session, "CONNECT", target, (int)status, error, reason);
        metrics.Finished("connect", error, Stopwatch.GetElapsedTime(started));
        try
        {
            await RawResponses.WriteErrorAsync(transport.Output, status, error, reason, options.Value.Realm, close: true).ConfigureAwait(false);
            await transport.Output.FlushAsync().ConfigureAwait(false);
            await LingerAsync(transport.Input).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
        {
            // The client is already gone.
        }
    }

    /// <summary>
    /// Reads and drops what the client still sends (its tunnel bytes) until it closes, for a short while: closing a
    /// socket with unread input sends a TCP reset, which can destroy the answer before the client reads it.
    /// </summary>
    private async Task LingerAsync(PipeReader input)
    {
        using var linger = new CancellationTokenSource(LingerTime, time);
        long dropped = 0;
        try
        {
            while (dropped < LingerBytes)
            {
                var read = await input.ReadAsync(linger.Token).ConfigureAwait(false);
                dropped += read.Buffer.Length;
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (linger.IsCancellationRequested)
        {
        }
    }
}
