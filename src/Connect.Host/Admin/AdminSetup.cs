using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Connect.Admin.Contracts;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;
using Connect.Host.Configuration;
using Connect.Host.Draining;
using Connect.Host.Admin.Live;
using Connect.Host.Health;
using Connect.Host.Metrics;
using Connect.Host.Security;
using Connect.Host.Tunnels;
using Connect.Routing.Links;
using Connect.Tunnel.Targets;

namespace Connect.Host.Admin;

/// <summary>
/// The admin API: cluster-wide JSON views and actions under <c>/v1</c> (bearer token), <c>/metrics</c> in Prometheus
/// text, all on the admin listener only (see docs/OPERATIONS.md).
/// </summary>
public static class AdminSetup
{
    public static IServiceCollection AddConnectAdmin(this IServiceCollection services, ConnectSettings settings)
    {
        services.AddSingleton(sp => new AdminTokens(settings, sp.GetRequiredService<TokenStore>()));
        services.AddSingleton<ClusterView>();
        services.AddSingleton<LinkNodeLocator>();
        services.AddSingleton<LiveFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveFeed>());
        services.AddSingleton<NodeMetrics>();
        services.AddSingleton<PrometheusExporter>();
        services.AddConnectHealthChecks();
        return services;
    }

    /// <summary>Starts this node's <see cref="NodeInfoActor"/> with the actor system, at its well-known path.</summary>
    public static AkkaConfigurationBuilder WithNodeInfoActor(this AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.WithActors((system, registry, _) => system.ActorOf(
            NodeInfoActor.Props(
                Cluster.Get(system).SelfAddress.ToString(),
                provider.GetRequiredService<LinkRegistry>(),
                provider.GetRequiredService<NodeLifecycle>(),
                provider.GetRequiredService<Connect.Proxy.ProxyDrain>(),
                registry.Get<SessionRegion>(),
                provider.GetRequiredService<Connect.Proxy.AccessLog>(),
                provider.GetRequiredService<Connect.Host.Tunnels.NodeIdentity>()),
            NodeInfoActor.Name));

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder routes)
    {
        // Created now, not at the first scrape, so that counters count from the start.
        routes.ServiceProvider.GetRequiredService<PrometheusExporter>();
        var locator = routes.ServiceProvider.GetRequiredService<LinkNodeLocator>();
        routes.ServiceProvider.GetRequiredService<Connect.Proxy.AccessLog>().LocateLink = locator.Locate;
        routes.MapGet("/metrics", (PrometheusExporter exporter) => Results.Text(exporter.Scrape(), "text/plain; version=0.0.4; charset=utf-8"))
            .OnlyOnListener(Listeners.Admin);

        // The live operations page: static, so it is served without auth and holds no token; its script asks for
        // the admin token (?token= or a form, kept in sessionStorage) and follows /v1/events (pushed, no polling),
        // which keeps its bearer check.
        routes.MapGet("/ops", (HttpResponse response) =>
        {
            response.Headers.CacheControl = "no-store";
            response.Headers["Referrer-Policy"] = "no-referrer";
            response.Headers.XContentTypeOptions = "nosniff";
            response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
            return Results.Bytes(OpsPage.Value, "text/html; charset=utf-8");
        }).OnlyOnListener(Listeners.Admin);

        var v1 = routes.MapGroup("/v1").AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (!HealthEndpoints.OnListener(http, Listeners.Admin))
            {
                return Results.NotFound();
            }
            var refusal = http.RequestServices.GetRequiredService<AdminTokens>().Refusal(http.Request.Headers.Authorization);
            if (refusal is not null)
            {
                http.Response.Headers.WWWAuthenticate = "Bearer realm=\"connect-admin\"";
                return Results.Json(new AdminError(refusal), statusCode: StatusCodes.Status401Unauthorized);
            }
            try
            {
                return await next(context);
            }
            catch (Exception e) when (e is AskTimeoutException or TimeoutException)
            {
                return Results.Json(new AdminError($"the cluster did not answer in time: {e.Message}"), statusCode: StatusCodes.Status504GatewayTimeout);
            }
        });

        // ?address= asks only that member (the deploy gate's "is it ready?"), so the answer never waits on the others.
        v1.MapGet("/nodes", async (string? address, ClusterView view, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(address))
            {
                return Results.Json(await view.NodesAsync(ct));
            }
            var member = view.FindMember(address);
            return member is null ? UnknownMember(address) : Results.Json(await view.NodesAsync(ct, member.Address));
        });

        v1.MapGet("/sessions", async (string? node, string? state, string? after, string? limit, ClusterView view, CancellationToken ct) =>
        {
            int? pageSize = null;
            if (!string.IsNullOrEmpty(limit))
            {
                if (!int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsedLimit) || parsedLimit < 1 || parsedLimit > ClusterView.MaxSessionsPerPage)
                {
                    return Results.Json(new AdminError($"limit must be a whole number from 1 to {ClusterView.MaxSessionsPerPage}, not '{limit}'"), statusCode: StatusCodes.Status400BadRequest);
                }
                pageSize = parsedLimit;
            }
            if (!string.IsNullOrEmpty(after) && !SessionNames.IsValid(after))
            {
                return Results.Json(new AdminError($"after must be a session name (the 'next' of the previous page): {SessionNames.Rule}"), statusCode: StatusCodes.Status400BadRequest);
            }
            SessionActivity? activity = null;
            if (!string.IsNullOrEmpty(state))
            {
                if (!Enum.TryParse<SessionActivity>(state, ignoreCase: true, out var parsed) || int.TryParse(state, out _))
                {
                    return Results.Json(new AdminError($"state must be idle, busy, draining or disconnected, not '{state}'"), statusCode: StatusCodes.Status400BadRequest);
                }
                activity = parsed;
            }
            return Results.Json(await view.SessionsAsync(string.IsNullOrWhiteSpace(node) ? null : node, activity, string.IsNullOrEmpty(after) ? null : after, pageSize, ct));
        });

        v1.MapGet("/sessions/{name}", async (string name, ClusterView view, CancellationToken ct) =>
        {
            if (!SessionNames.IsValid(name))
            {
                return Results.Json(new AdminError($"a session name must be {SessionNames.Rule}"), statusCode: StatusCodes.Status400BadRequest);
            }
            var detail = await view.SessionAsync(name, ct);
            return detail is null
                ? Results.Json(new AdminError($"session '{name}' is not known to the cluster: no node hosts its entity and no link serves it"), statusCode: StatusCodes.Status404NotFound)
                : Results.Json(detail);
        });

        v1.MapPost("/sessions/{name}/kick", async (string name, ClusterView view, CancellationToken ct) =>
        {
            if (!SessionNames.IsValid(name))
            {
                return Results.Json(new AdminError($"a session name must be {SessionNames.Rule}"), statusCode: StatusCodes.Status400BadRequest);
            }
            var snapshot = await view.KickAsync(name, ct);
            return Results.Json(new ActionResult("kick", name, snapshot.Links.Count == 0
                ? $"session '{name}' has no links; nothing to move"
                : $"GOAWAY sent to {snapshot.Links.Count} link(s) of session '{name}'; the agent reconnects, open streams finish"));
        });

        v1.MapGet("/sharding", (ClusterView view, CancellationToken ct) => view.ShardingAsync(ct));

        // The live feed (Server-Sent Events) and a session's last requests from every node's access log.
        v1.MapLiveEvents();

        v1.MapPost("/nodes/drain", async (string? address, ClusterView view, CancellationToken ct) =>
        {
            var member = view.FindMember(address);
            if (member is null)
            {
                return UnknownMember(address);
            }
            var started = await view.DrainAsync(member.Address, ct);
            return Results.Json(
                new ActionResult("drain", started.Address, started.AlreadyDraining
                    ? $"already draining: {started.Links} links, {started.Streams} streams left"
                    : $"drain started: {started.Links} links, {started.Streams} streams; poll GET /v1/nodes for readyToTerminate"),
                statusCode: StatusCodes.Status202Accepted);
        });

        v1.MapPost("/nodes/leave", async (string? address, ClusterView view, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(address))
            {
                return Results.Json(new AdminError("give the member to leave: ?address=akka.tcp://connect@host:port (or host:port)"), statusCode: StatusCodes.Status400BadRequest);
            }
            var member = view.FindMember(address);
            if (member is null)
            {
                return UnknownMember(address);
            }
            // The member leaves by itself so it drains while still Up; a Cluster.Leave from here would make it
            // Exiting at once (its region could no longer register, the coordinator would move mid-drain).
            var started = await view.AskToLeaveAsync(member.Address, ct);
            if (started is null)
            {
                view.Leave(member.Address);
                return Results.Json(new ActionResult("leave", member.Address.ToString(), "the member did not answer; leave issued through the cluster (it drains as it shuts down)"), statusCode: StatusCodes.Status202Accepted);
            }
            return Results.Json(
                new ActionResult("leave", started.Address, started.AlreadyLeaving
                    ? "already shutting down"
                    : $"leave started: the member drains while Up ({started.Links} links, {started.Streams} streams), hands its sessions off, then leaves"),
                statusCode: StatusCodes.Status202Accepted);
        });

        v1.MapPost("/nodes/down", (string? address, ClusterView view) =>
        {
            if (string.IsNullOrWhiteSpace(address))
            {
                return Results.Json(new AdminError("give the member to down: ?address=akka.tcp://connect@host:port (or host:port)"), statusCode: StatusCodes.Status400BadRequest);
            }
            var member = view.FindMember(address);
            if (member is null)
            {
                return UnknownMember(address);
            }
            view.Down(member.Address);
            return Results.Json(new ActionResult("down", member.Address.ToString(), "marked down; its shards move to the other members"), statusCode: StatusCodes.Status202Accepted);
        });

        v1.MapPost("/nodes/down-unreachable", (ClusterView view) =>
        {
            var downed = view.DownUnreachable();
            return Results.Json(new ActionResult("down-unreachable", string.Join(",", downed), downed.Count == 0 ? "no member is unreachable" : $"marked {downed.Count} unreachable member(s) down"), statusCode: StatusCodes.Status202Accepted);
        });
        return routes;
    }

    private static readonly Lazy<byte[]> OpsPage = new(() =>
    {
        using var stream = typeof(AdminSetup).Assembly.GetManifestResourceStream("Connect.Host.Admin.OpsPage.html")
            ?? throw new InvalidOperationException("the operations page resource Connect.Host.Admin.OpsPage.html is missing from the assembly");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    private static IResult UnknownMember(string? address) =>
        Results.Json(new AdminError($"no single cluster member matches '{address}' (give akka.tcp://system@host:port or host:port; see GET /v1/nodes)"), statusCode: StatusCodes.Status404NotFound);
}
