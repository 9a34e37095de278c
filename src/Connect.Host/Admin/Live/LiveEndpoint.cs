using System.Text;
using Connect.Admin.Contracts;
using Connect.Tunnel.Targets;
using Microsoft.AspNetCore.Http.Features;

namespace Connect.Host.Admin.Live;

/// <summary>
/// <c>GET /v1/events[?session=NAME]</c>: the live feed as Server-Sent Events (text/event-stream), behind the same
/// bearer check as the rest of <c>/v1</c>. Events: <c>change</c>, <c>snapshot</c>, <c>session</c> (with
/// <c>?session=</c>), <c>dropped</c> (see <see cref="LiveEventTypes"/>); a comment line every
/// <see cref="Heartbeat"/> keeps proxies and idle timeouts from closing a quiet stream. The stream ends when the
/// client goes away or the node stops.
/// </summary>
public static class LiveEndpoint
{
    /// <summary>How long the stream may stay silent before a keep-alive comment is sent.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    /// <summary>How long the client waits before reconnecting after the stream broke (the SSE <c>retry:</c> field).</summary>
    public const int RetryMilliseconds = 2000;

    public static RouteGroupBuilder MapLiveEvents(this RouteGroupBuilder v1)
    {
        v1.MapGet("/events", async (string? session, HttpContext http, LiveFeed feed, IHostApplicationLifetime lifetime) =>
        {
            if (!string.IsNullOrEmpty(session) && !SessionNames.IsValid(session))
            {
                return Results.Json(new AdminError($"a session name must be {SessionNames.Rule}"), statusCode: StatusCodes.Status400BadRequest);
            }
            var response = http.Response;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-store";
            response.Headers["X-Accel-Buffering"] = "no";
            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
            var subscriber = feed.Subscribe(string.IsNullOrEmpty(session) ? null : session);
            try
            {
                await response.WriteAsync($"retry: {RetryMilliseconds}\n\n", stop.Token);
                await response.Body.FlushAsync(stop.Token);
                var text = new StringBuilder();
                while (!stop.IsCancellationRequested)
                {
                    var events = await subscriber.TakeAsync(Heartbeat, stop.Token);
                    text.Clear();
                    if (events.Count == 0)
                    {
                        text.Append(": keep-alive\n\n");
                    }
                    foreach (var e in events)
                    {
                        // Data is one line of JSON (System.Text.Json escapes newlines), so one data: field carries it.
                        text.Append("event: ").Append(e.Type).Append('\n').Append("data: ").Append(e.Data).Append("\n\n");
                    }
                    await response.WriteAsync(text.ToString(), stop.Token);
                    await response.Body.FlushAsync(stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                // The client went away or the node is stopping: the stream just ends.
            }
            finally
            {
                feed.Unsubscribe(subscriber);
            }
            return Results.Empty;
        });

        v1.MapGet("/sessions/{name}/requests", async (string name, ClusterView view, CancellationToken ct) =>
            SessionNames.IsValid(name)
                ? Results.Json(await view.RequestsAsync(name, ct))
                : Results.Json(new AdminError($"a session name must be {SessionNames.Rule}"), statusCode: StatusCodes.Status400BadRequest));
        return v1;
    }
}
