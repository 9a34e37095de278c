using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Links;
using Connect.Host.Configuration;
using Connect.Host.Tunnels;
using Microsoft.AspNetCore.Connections.Features;

namespace Connect.Host.Health;

/// <summary><c>/healthz</c> (the process answers) and <c>/readyz</c> (503 while draining or not yet a cluster member), on the admin listener.</summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder routes)
    {
        var admin = routes.MapGroup("").AddEndpointFilter(async (context, next) =>
            OnListener(context.HttpContext, Listeners.Admin) ? await next(context) : Results.NotFound());
        admin.MapGet("/healthz", () => Results.Text("ok\n"));
        admin.MapGet("/readyz", (NodeLifecycle lifecycle, ActorSystem system, LinkRegistry links) =>
        {
            var member = Cluster.Get(system).SelfMember.Status;
            if (lifecycle.IsDraining)
            {
                return Results.Text($"draining: {links.Count} links, {links.ActiveStreams} streams left\n", statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            return member == MemberStatus.Up
                ? Results.Text("ready\n")
                : Results.Text($"not ready: cluster member status {member}\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        return routes;
    }

    public static bool OnListener(HttpContext context, string listener)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        return items is not null && items.TryGetValue(ListenerKeys.Listener, out var name) && Equals(name, listener);
    }
}
