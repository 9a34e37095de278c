using System.Diagnostics;
using System.Net;
using Connect.Proxy.Configuration;
using Connect.Proxy.Headers;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// Forwards absolute-form requests (<c>GET http://host:port/path HTTP/1.1</c>, RFC 9112 section 3.2.2) through the
/// session's tunnel: request and response bodies stream both ways (chunked or Content-Length, as Kestrel and
/// the upstream client frame them), hop-by-hop headers are dropped (RFC 9110 section 7.6.1), Via is added.
/// Only requests that arrived on the proxy listener are handled; others pass to the next middleware.
/// </summary>
public sealed class ForwardProxyMiddleware(RequestDelegate next, ProxyGate gate, UpstreamClients clients, ConnectTunneler tunneler, ProxyDrain drain, IOptions<ProxyOptions> options, ProxyMetrics metrics, AccessLog accessLog, ILogger<ForwardProxyMiddleware> logger)
{
    /// <summary>HttpContext item: the node whose link carried the request (the pooled connection's stream), for the access log.</summary>
    private const string LinkNodeItem = "connect.link-node";

    private const string ViaValue = "1.1 connect";

    public async Task InvokeAsync(HttpContext context)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null || !items.TryGetValue(ProxyConnectionMiddleware.ListenerItemKey, out var listener) || !Equals(listener, ProxyConnectionMiddleware.ProxyListener))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        if (HttpMethods.IsConnect(context.Request.Method))
        {
            await ConnectAfterKeepAliveAsync(context).ConfigureAwait(false);
            return;
        }
        await ForwardAsync(context).ConfigureAwait(false);
    }

    private async Task ForwardAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        metrics.Started();
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? string.Empty;
        var method = context.Request.Method;
        var sessionForLog = "-";
        var error = ProxyError.None;
        try
        {
            if (!Uri.TryCreate(rawTarget, UriKind.Absolute, out var uri) || rawTarget.StartsWith('/'))
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, ProxyError.BadRequest,
                    "this is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port").ConfigureAwait(false);
                return;
            }
            if (uri.Scheme != Uri.UriSchemeHttp)
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, ProxyError.BadRequest,
                    $"'{uri.Scheme}' URLs are not forwarded in absolute-form; only http:// is (use CONNECT for https:// and wss://)").ConfigureAwait(false);
                return;
            }
            if (uri.Port is < 1 or > 65535 || string.IsNullOrEmpty(uri.Host))
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, ProxyError.BadRequest, $"'{rawTarget}' has no valid host and port").ConfigureAwait(false);
                return;
            }

            // No check for Content-Length beside Transfer-Encoding here (RFC 9112 section 6.1, request smuggling): Kestrel
            // answers 400 to a Transfer-Encoding whose last coding is not chunked, and removes Content-Length when the
            // request is chunked, so only the chunked framing ever reaches this point (MalformedProxyRequestTests).

            var verdict = gate.Authorize(context.Request.Headers.ProxyAuthorization);
            sessionForLog = verdict.SessionId ?? "-";
            if (verdict.Error != ProxyError.None)
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, verdict.Error, verdict.Reason).ConfigureAwait(false);
                return;
            }

            using var tracked = drain.Track(verdict.SessionId!, $"{method} {rawTarget}", context.Abort);
            HttpResponseMessage response;
            try
            {
                response = await SendWithRetryAsync(context, uri, verdict.SessionId!).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (e.InnerException is TunnelConnectException tunnel)
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, tunnel.Error, tunnel.Message).ConfigureAwait(false);
                return;
            }
            catch (HttpRequestException e)
            {
                error = await RespondAsync(context, sessionForLog, rawTarget, ProxyError.UpstreamFailed, $"the target did not answer properly: {Innermost(e)}").ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                error = ProxyError.ClientAborted;
                return;
            }

            using (response)
            {
                error = await CopyResponseAsync(context, response, sessionForLog, method, rawTarget).ConfigureAwait(false);
            }
        }
        finally
        {
            metrics.Finished("absolute", error, Stopwatch.GetElapsedTime(started));
            accessLog.Complete(AccessRecord(context, method, rawTarget, sessionForLog, error, started));
        }
    }

    /// <summary>
    /// Sends the request upstream, and sends it again (on another connection) in three cases where the target cannot
    /// have acted on it, or may act twice harmlessly:
    /// <list type="bullet">
    /// <item>a pooled connection was retired (its target closes after every response) and refused the request before
    /// writing a byte of it: any method without a body, since nothing reached the target;</item>
    /// <item>a reused connection closed before the first byte of the response (the persistent-connection race every
    /// forward proxy has, which squid also retries once): idempotent methods without a body (RFC 9110 section 9.2.2,
    /// RFC 9112 section 9.3.1), once;</item>
    /// <item>the tunnel under the request was lost before any response (a node crashed, a link died): idempotent
    /// methods without a body.</item>
    /// </list>
    /// </summary>
    private async Task<HttpResponseMessage> SendWithRetryAsync(HttpContext context, Uri uri, string session)
    {
        var bodiless = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != true;
        var retryable = bodiless && IsIdempotent(context.Request.Method);
        var tunnelRetries = 0;
        var raceRetries = 0;
        var refusals = 0;
        for (var attempt = 1; ; attempt++)
        {
            using var request = BuildRequest(context, uri);
            var tracker = new UpstreamAttempt();
            UpstreamAttempt.Current = tracker;
            try
            {
                var response = await clients.For(session).SendAsync(request, context.RequestAborted).ConfigureAwait(false);
                if (ClosesAfterResponse(response))
                {
                    tracker.Connection?.Retire();
                }
                return response;
            }
            catch (HttpRequestException e) when (bodiless && refusals < MaxRefusals && Has<UpstreamRetiredException>(e) && !context.RequestAborted.IsCancellationRequested)
            {
                // Nothing was written on the retired connection (and the pool retries on its own only what it may), so the
                // target saw nothing: not a retry it could notice, and not counted against the others. The pool may hold
                // several retired connections after a burst, hence a bound of its own.
                refusals++;
                attempt--;
            }
            catch (HttpRequestException e) when (retryable && raceRetries == 0 && attempt < MaxAttempts && tracker.Reused && tracker.ResponseBytes == 0 && !IsTunnelLoss(e) && !context.RequestAborted.IsCancellationRequested)
            {
                raceRetries++;
                ProxyLog.RequestRetriedAfterReuse(logger, session, context.Request.Method, uri.ToString(), attempt, Innermost(e));
            }
            catch (HttpRequestException e) when (retryable && tunnelRetries < 2 && attempt < MaxAttempts && IsTunnelLoss(e) && !context.RequestAborted.IsCancellationRequested)
            {
                tunnelRetries++;
                ProxyLog.RequestRetried(logger, session, context.Request.Method, uri.ToString(), attempt, Innermost(e));
            }
            finally
            {
                // The link that carried the last try, also when it failed or the client gave up waiting: a request stuck
                // on a link must not look like one that never reached a tunnel (link=-) in the access log.
                if (tracker.Connection is { } connection)
                {
                    context.Items[LinkNodeItem] = accessLog.LinkNodeOf(session, connection.Inner);
                }
            }
        }
    }

    /// <summary>Bounds the counted retries (tunnel loss, persistent-connection race).</summary>
    private const int MaxAttempts = 4;

    /// <summary>Bounds how many retired pooled connections one request may meet.</summary>
    private const int MaxRefusals = 64;

    /// <summary>
    /// An HTTP/1.0 response without <c>Connection: keep-alive</c> means the target closes the connection after it
    /// (RFC 9112 section 9.3, appendix C.2.2); SocketsHttpHandler would keep it in the pool anyway.
    /// </summary>
    private static bool ClosesAfterResponse(HttpResponseMessage response)
    {
        if (response.Headers.ConnectionClose == true)
        {
            return true;
        }
        return response.Version == HttpVersion.Version10
            && !(response.Headers.NonValidated.TryGetValues("Connection", out var connection)
                 && connection.Any(v => v.Contains("keep-alive", StringComparison.OrdinalIgnoreCase)));
    }

    private static bool Has<T>(Exception e) where T : Exception
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is T)
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method) || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);

    private static bool IsTunnelLoss(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is Tunnel.Multiplexing.StreamResetException { Code: Tunnel.Frames.ResetCode.LinkLost })
            {
                return true;
            }
        }
        return false;
    }

    private static HttpRequestMessage BuildRequest(HttpContext context, Uri uri)
    {
        var incoming = context.Request;
        var request = new HttpRequestMessage(new HttpMethod(incoming.Method), uri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var bodyDetection = context.Features.Get<IHttpRequestBodyDetectionFeature>();
        if (bodyDetection?.CanHaveBody == true)
        {
            request.Content = new StreamContent(incoming.Body, 32 * 1024);
        }
        else if (incoming.ContentLength == 0 && !HttpMethods.IsGet(incoming.Method) && !HttpMethods.IsHead(incoming.Method))
        {
            request.Content = new ByteArrayContent([]);
        }

        var skip = HopByHopHeaders.ForMessage(incoming.Headers.Connection);
        foreach (var (name, values) in incoming.Headers)
        {
            if (skip.Contains(name) || name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        request.Headers.TryAddWithoutValidation("Via", ViaValue);
        return request;
    }

    private async Task<ProxyError> CopyResponseAsync(HttpContext context, HttpResponseMessage upstream, string session, string method, string target)
    {
        var response = context.Response;
        response.StatusCode = (int)upstream.StatusCode;
        // NonValidated keeps each header exactly as the target sent it (the validated view would re-split product tokens).
        var skip = HopByHopHeaders.ForMessage(upstream.Headers.NonValidated.TryGetValues("Connection", out var connection) ? connection.ToString() : string.Empty);
        foreach (var (name, values) in upstream.Headers.NonValidated)
        {
            if (!skip.Contains(name))
            {
                response.Headers.Append(name, values.ToArray());
            }
        }
        foreach (var (name, values) in upstream.Content.Headers.NonValidated)
        {
            if (!skip.Contains(name))
            {
                response.Headers.Append(name, values.ToArray());
            }
        }
        response.Headers.Append("Via", ViaValue);
        if (drain.IsDraining)
        {
            // Keep-alive clients move to another node for their next request.
            response.Headers.Connection = "close";
        }
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        try
        {
            await using var body = await upstream.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
            await body.CopyToAsync(response.Body, 32 * 1024, context.RequestAborted).ConfigureAwait(false);
            return ProxyError.None;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return ProxyError.ClientAborted;
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The status line is out: the only honest signal left is to abort, so the client sees a truncated response as an error.
            ProxyLog.ResponseAborted(logger, session, method, target, Innermost(e));
            context.Abort();
            return ProxyError.UpstreamFailed;
        }
    }

    private async Task<ProxyError> RespondAsync(HttpContext context, string session, string target, ProxyError error, string reason)
    {
        var status = (int)ProxyErrors.StatusOf(error);
        ProxyLog.RequestFailed(logger, session, context.Request.Method, target, status, error, reason);
        if (context.Response.HasStarted)
        {
            context.Abort();
            return error;
        }
        await RawResponses.WriteErrorAsync(context.Response, (HttpStatusCode)status, error, reason, options.Value.Realm, context.RequestAborted).ConfigureAwait(false);
        return error;
    }

    /// <summary>
    /// A CONNECT that arrives after a keep-alive request on the same connection reaches Kestrel's HTTP stack,
    /// which cannot answer it with an opaque stream; take the connection's raw pipe, answer and splice it there,
    /// then abort the HTTP request so Kestrel does not write a response of its own.
    /// </summary>
    private async Task ConnectAfterKeepAliveAsync(HttpContext context)
    {
        var transport = context.Features.Get<IConnectionTransportFeature>()?.Transport;
        var authority = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? string.Empty;
        if (transport is null)
        {
            await RespondAsync(context, "-", authority, ProxyError.BadRequest, "CONNECT must be the first request on a connection to this proxy").ConfigureAwait(false);
            return;
        }
        if (!ConnectRequestParser.IsValidAuthority(authority, out var problem))
        {
            await RespondAsync(context, "-", authority, ProxyError.BadRequest, problem).ConfigureAwait(false);
            return;
        }
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var request = new ConnectRequest(authority, context.Request.Protocol, context.Request.Headers.ProxyAuthorization.ToString(), headers);
        await tunneler.HandleAsync(transport, context.Abort, request, context.Connection.RemoteIpAddress?.ToString() ?? "?", context.RequestAborted, CancellationToken.None).ConfigureAwait(false);
        // Any answer was written raw; Kestrel's own response state is meaningless now, so end the connection.
        context.Abort();
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }
        return e.Message;
    }

    /// <summary>The access-log record of a finished absolute-form request; bytes are the bodies' declared lengths (0 when chunked or absent).</summary>
    private static AccessLog.Pending AccessRecord(HttpContext context, string method, string target, string session, ProxyError error, long started) =>
        new(method, target, started)
        {
            Session = session,
            LinkNode = context.Items.TryGetValue(LinkNodeItem, out var node) && node is string name ? name : "-",
            Status = context.Response.HasStarted || error != ProxyError.ClientAborted ? context.Response.StatusCode : 0,
            BytesUp = context.Request.ContentLength ?? 0,
            BytesDown = context.Response.ContentLength ?? 0,
            Error = error,
        };
}
