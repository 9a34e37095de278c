using Connect.Host.Configuration;

namespace Connect.Host.Admin;

/// <summary>The admin API: cluster-wide JSON views and actions on the admin listener (see docs/OPERATIONS.md).</summary>
public static class AdminSetup
{
    public static IServiceCollection AddConnectAdmin(this IServiceCollection services, ConnectSettings settings) => services;

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder routes) => routes;
}
