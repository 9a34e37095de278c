using Akka.Actor;
using Akka.Cluster;
using Connect.Host.Configuration;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Routing.Links;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Connect.Host.Health;

/// <summary>
/// <c>/healthz</c> (the process answers) and <c>/readyz</c> (503 while draining, not yet a cluster member, or cut off on
/// the minority side of a partition), on the
/// admin listener, as ASP.NET Core health checks: liveness runs no check, readiness runs the checks tagged "ready".
/// Both answer in plain text, one line, so a probe log says why.
/// </summary>
public static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    public static IServiceCollection AddConnectHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks().AddCheck<ReadinessCheck>("cluster-member-and-not-draining", tags: [ReadyTag]);
        return services;
    }

    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder routes)
    {
        routes.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            Predicate = _ => false,
            ResponseWriter = (context, _) => context.Response.WriteAsync("ok\n"),
        }).OnlyOnListener(Listeners.Admin);
        routes.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = (context, report) =>
            {
                context.Response.ContentType = "text/plain; charset=utf-8";
                var text = report.Status == HealthStatus.Healthy
                    ? "ready"
                    : string.Join("; ", report.Entries.Values.Where(e => e.Status != HealthStatus.Healthy).Select(e => e.Description));
                return context.Response.WriteAsync(text + "\n");
            },
        }).OnlyOnListener(Listeners.Admin);
        return routes;
    }

    /// <summary>Serves the endpoints only on connections that arrived on <paramref name="listener"/>; elsewhere they are 404, as if absent.</summary>
    public static TBuilder OnlyOnListener<TBuilder>(this TBuilder builder, string listener)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.Add(endpoint =>
        {
            var inner = endpoint.RequestDelegate ?? throw new InvalidOperationException($"endpoint {endpoint.DisplayName} has no request delegate");
            endpoint.RequestDelegate = context =>
            {
                if (OnListener(context, listener))
                {
                    return inner(context);
                }
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            };
        });
        return builder;
    }

    public static bool OnListener(HttpContext context, string listener)
    {
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        return items is not null && items.TryGetValue(ListenerKeys.Listener, out var name) && Equals(name, listener);
    }

    /// <summary>Ready = a cluster member that is Up, not draining, and on the side of any partition that is kept (<see cref="SurvivingSide"/>).</summary>
    private sealed class ReadinessCheck(NodeLifecycle lifecycle, ActorSystem system, LinkRegistry links) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            if (lifecycle.IsDraining)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"draining: {links.Count} links, {links.ActiveStreams} streams left"));
            }
            var cluster = Cluster.Get(system);
            var member = cluster.SelfMember.Status;
            if (member != MemberStatus.Up)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"not ready: cluster member status {member}"));
            }
            var state = cluster.State;
            if (!SurvivingSide.Keeps(state.Members, state.Unreachable))
            {
                return Task.FromResult(HealthCheckResult.Unhealthy(
                    $"not ready: on the minority side of a partition ({state.Unreachable.Count} of {state.Members.Count} members unreachable); the shard coordinator cannot be reached and this node will be downed"));
            }
            return Task.FromResult(HealthCheckResult.Healthy("ready"));
        }
    }
}
