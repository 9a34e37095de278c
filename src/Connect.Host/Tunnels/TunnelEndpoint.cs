using System.Net.WebSockets;
using Akka.Actor;
using Akka.Hosting;
using Connect.Actors.Links;
using Connect.Actors.Mailboxes;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;
using Connect.Host.Configuration;
using Connect.Host.Draining;
using Connect.Host.Security;
using Connect.Proxy;
using Connect.Proxy.Auth;
using Connect.Routing.Links;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Targets;
using Connect.Tunnel.Transport;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;

namespace Connect.Host.Tunnels;

/// <summary>
/// The agents' WebSocket endpoint, <c>/v1/tunnel?session=NAME</c> with <c>Authorization: Bearer TOKEN</c> and
/// subprotocol <c>connect.v1</c>. A link that passes the checks is registered on this node, gets a link actor
/// that attaches it to its session entity (wherever sharding placed it), and runs until either side closes it.
/// </summary>
public static partial class TunnelEndpoint
{
    public const string Path = "/v1/tunnel";
    public const string ListenerName = "tunnel";

    /// <summary>
    /// How long the upgrade waits for the session entity's link count. Short: when the entity's node is unreachable
    /// (crashed or frozen, not yet downed) the ask cannot be answered, and a reconnect storm must not queue every agent
    /// behind it. Past it the agent is upgraded and the entity enforces the limit when the link attaches.
    /// </summary>
    private static readonly TimeSpan LinkCountTimeout = TimeSpan.FromSeconds(1);

    /// <summary>What a log line says instead of a session name that must not be repeated (it may be a token).</summary>
    private const string UnnamedSession = "-";

    public static IEndpointRouteBuilder MapTunnelEndpoint(this IEndpointRouteBuilder routes)
    {
        routes.Map(Path, HandleAsync);
        return routes;
    }

    private static async Task HandleAsync(
        HttpContext context,
        TokenStore tokens,
        LinkRegistry links,
        NodeIdentity node,
        ActorSystem system,
        IRequiredActor<SessionRegion> region,
        IOptions<ConnectSettings> settings,
        NodeLifecycle lifecycle,
        LimitMetrics limits,
        MuxKeepAliveSweep keepAlive,
        ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger("Connect.Host.Tunnels.TunnelEndpoint");
        if (!IsTunnelListener(context))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        var session = context.Request.Query["session"].ToString();
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RejectAsync(context, StatusCodes.Status400BadRequest, "expected a WebSocket upgrade (subprotocol connect.v1)");
            return;
        }
        if (!SessionNames.IsValid(session))
        {
            await RejectAsync(context, StatusCodes.Status400BadRequest, $"query parameter 'session' must be {SessionNames.Rule}");
            return;
        }
        var authorization = context.Request.Headers.Authorization.ToString();
        if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"connect\"";
            await RejectAsync(context, StatusCodes.Status401Unauthorized, "send Authorization: Bearer TOKEN");
            return;
        }
        var verdict = tokens.Check(session, authorization["Bearer ".Length..].Trim(), TokenScope.Agent);
        if (verdict is ProxyAuthResult.InvalidToken or ProxyAuthResult.FieldsSwapped)
        {
            // With an unknown token, ?session= may hold a token (the fields swapped): neither the log nor the body repeats it.
            var reason = verdict == ProxyAuthResult.FieldsSwapped
                ? "invalid token; the fields look swapped (?session= holds a token): send ?session=NAME with Authorization: Bearer TOKEN"
                : "invalid token";
            Log.AgentRejected(logger, UnnamedSession, 401, reason);
            await RejectAsync(context, StatusCodes.Status401Unauthorized, reason);
            return;
        }
        if (verdict == ProxyAuthResult.SessionNotPermitted)
        {
            Log.AgentRejected(logger, session, 403, "token not permitted for this session");
            await RejectAsync(context, StatusCodes.Status403Forbidden, $"this token may not serve session '{session}'");
            return;
        }
        if (!context.WebSockets.WebSocketRequestedProtocols.Contains(ProtocolLimits.SubProtocol))
        {
            await RejectAsync(context, StatusCodes.Status400BadRequest, $"offer the WebSocket subprotocol {ProtocolLimits.SubProtocol}");
            return;
        }
        if (lifecycle.IsDraining)
        {
            context.Response.Headers.RetryAfter = "1";
            await RejectAsync(context, StatusCodes.Status503ServiceUnavailable, "this node is draining; connect to another node");
            return;
        }

        var sessions = settings.Value.Sessions;
        var holding = await CountLinksAsync(region.ActorRef, session, context.RequestAborted);
        if (holding >= sessions.MaxLinksPerSession)
        {
            limits.Hit(Limits.LinksPerSession);
            Log.AgentRejected(logger, session, 429, $"session already holds {holding} links (limit {sessions.MaxLinksPerSession})");
            context.Response.Headers.RetryAfter = "30";
            await RejectAsync(context, StatusCodes.Status429TooManyRequests,
                $"session '{session}' already holds {holding} links, its limit (Connect:Sessions:MaxLinksPerSession = {sessions.MaxLinksPerSession}); close one or raise the limit");
            return;
        }

        context.Response.Headers["Connect-Node"] = node.Address;
        var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = ProtocolLimits.SubProtocol,
            KeepAliveInterval = TimeSpan.Zero, // connect.v1 PING frames do keep-alive.
            DangerousEnableCompression = false,
        });

        var tunnel = settings.Value.Tunnel;
        var remote = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
        var mux = new TunnelMux(new WebSocketFrameTransport(new CloseFlushingWebSocket(socket, TimeSpan.FromSeconds(1)), remote), new MuxOptions
        {
            IsDialer = false,
            AcceptInboundStreams = false,
            MaxStreams = tunnel.MaxStreamsPerLink,
            MaxMessageSize = tunnel.MaxMessageSize,
            KeepAliveInterval = tunnel.KeepAliveInterval,
            KeepAliveTimeout = tunnel.KeepAliveTimeout,
            KeepAliveSweep = keepAlive,
            SkipPingWhilePeerPings = true, // the agent pings every link; our PONGs are its sign of life (PROTOCOL.md section 5)
            ReceiveDataDirect = true, // what the agent sends (downloads) skips one copy (bench/ANALYSIS.md, issue 15)
        });
        var linkId = $"{session}.{Guid.NewGuid().ToString("N")[..10]}";
        var link = new TunnelLink(linkId, session, mux, remote, DateTimeOffset.UtcNow);
        // The actor first, then the registry: a drain reads the registry and tells each link's actor to go away, so a
        // registered link without its actor would miss the GOAWAY. (A grant naming the link before it is registered
        // only makes the broker ask again.)
        link.Actor = system.ActorOf(
            LinkActor.Props(link.SessionId, link.LinkId, link.Mux, link.Since, region.ActorRef, node.Address, node.DataEndpoint, () => lifecycle.SuggestedServers(link.SessionId), loggers)
                .WithMailbox(LeanMailbox.Id), // one per link, idle for minutes: no 32-slot queue segment each
            "link-" + Uri.EscapeDataString(linkId));
        links.Add(link);
        try
        {
            // A drain that began after the check above and read the registry before this link was in it: hand it over.
            lifecycle.AdoptIfDraining(link);
            Log.LinkAccepted(logger, session, linkId, remote);
            var closed = await mux.RunAsync();
            Log.LinkEnded(logger, session, linkId, closed.ToString());
            if (closed.Code == CloseCodes.TooManyLinks && !closed.ByPeer)
            {
                limits.Hit(Limits.LinksPerSession);
            }
        }
        finally
        {
            links.Remove(linkId);
        }
    }

    /// <summary>
    /// Links the session holds that are not going away, as its entity knows them (cluster-wide). The limit is checked
    /// before the upgrade so the agent gets an HTTP answer it can show; two agents racing may both pass (approximate by
    /// the number of concurrent handshakes). If the entity does not answer within <see cref="LinkCountTimeout"/> the
    /// check is skipped here (a limit must not keep agents out while the entity's node is unreachable or handed over)
    /// and the entity refuses the link at attach instead (<see cref="CloseCodes.TooManyLinks"/>), so the limit holds.
    /// </summary>
    private static async Task<int> CountLinksAsync(IActorRef region, string session, CancellationToken cancellationToken)
    {
        try
        {
            var snapshot = await region.Ask<SessionSnapshot>(new GetSession(session), LinkCountTimeout, cancellationToken);
            return snapshot.Links.Count(l => !l.Load.GoingAway);
        }
        catch (Exception e) when (e is AskTimeoutException or OperationCanceledException or TaskCanceledException)
        {
            return 0;
        }
    }

    private static bool IsTunnelListener(HttpContext context)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        return items is not null && items.TryGetValue(ListenerKeys.Listener, out var name) && Equals(name, ListenerName);
    }

    private static async Task RejectAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync($"connect: {reason}\n");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "session {SessionId}: link {LinkId} accepted from {Remote}")]
        public static partial void LinkAccepted(ILogger logger, string sessionId, string linkId, string remote);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "session {SessionId}: link {LinkId} ended: {CloseInfo}")]
        public static partial void LinkEnded(ILogger logger, string sessionId, string linkId, string closeInfo);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "session {SessionId}: agent rejected with {Status}: {Reason}")]
        public static partial void AgentRejected(ILogger logger, string sessionId, int status, string reason);
    }
}

/// <summary>Keys of the per-connection items that say which listener a connection arrived on.</summary>
public static class ListenerKeys
{
    public const string Listener = Connect.Proxy.Forwarding.ProxyConnectionMiddleware.ListenerItemKey;
}
