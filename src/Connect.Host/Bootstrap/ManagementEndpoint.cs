using System.Collections.Immutable;
using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Cluster.Bootstrap.ContactPoint;
using Akka.Management.Dsl;
using Connect.Host.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Connect.Host.Bootstrap;

/// <summary>
/// The management endpoint peers probe during cluster bootstrap: <c>GET /bootstrap/seed-nodes</c>, the same JSON as
/// Akka.Management's own route (its types, its serializer), served by a Kestrel of its own on the private management
/// address with nothing else on it. Once bound, it tells ClusterBootstrap its self contact point and starts it.
/// <para>
/// Why not Akka.Management's HTTP server: Akka.Management 1.5.73 serves HTTP through Akka.Http.Shim, built against
/// Ceen.Httpd 0.9.9; the registry here serves only 0.9.10, whose <c>HttpServer.ListenAsync</c> takes an
/// <c>EndPoint</c> instead of an <c>IPEndPoint</c>, so starting it fails with a <c>MissingMethodException</c>.
/// ClusterBootstrap itself (discovery, probing, the lowest-address join decision) is used unchanged.
/// </para>
/// </summary>
public sealed partial class ManagementEndpoint(IOptions<ConnectSettings> options, ActorSystem system, IHostApplicationLifetime lifetime, ILogger<ManagementEndpoint> logger) : IHostedService, IAsyncDisposable
{
    /// <summary>The route ClusterBootstrap's probes ask (Akka.Management's <c>ClusterBootstrapRequests.BootstrapSeedNodes</c>).</summary>
    public const string SeedNodesPath = "/bootstrap/seed-nodes";

    /// <summary>Peers probe about once a second each; anything beyond a handful of connections is not a peer.</summary>
    private const int MaxConnections = 64;

    private WebApplication? _app;

    /// <summary>The bound port (the configured one; read back for logs and tests).</summary>
    public int Port { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var bootstrap = settings.Cluster.Bootstrap;
        var bind = IPAddress.Parse(BootstrapConfiguration.ManagementBindAddress(settings));
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        // Nothing from appsettings.json or ASPNETCORE_* may add endpoints or change this server: it is configured here only.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = MaxConnections;
            kestrel.Limits.MaxRequestHeadersTotalSize = 8 * 1024;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(5);
            kestrel.Listen(bind, bootstrap.ManagementPort, listen => listen.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        // One read-only route; every other path and method is 404/405. It reveals the members' addresses, nothing more.
        app.MapGet(SeedNodesPath, SeedNodes);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        Port = bootstrap.ManagementPort;

        var self = new Uri($"http://{AdvertisedUrls.UrlHost(BootstrapConfiguration.ManagementHost(settings))}:{Port}/");
        var clusterBootstrap = ClusterBootstrap.Get(system);
        // Routes() is how a host that serves the bootstrap route itself hands ClusterBootstrap its own contact point
        // (it compares it with the discovered ones to find itself); the returned Ceen routes are not used.
        _ = clusterBootstrap.Routes(ManagementRouteProviderSettings.Create(self, readOnly: true));
        Log.Started(logger, self.ToString(), bind.ToString(), bootstrap.Discovery!);
        _ = clusterBootstrap.Start().ContinueWith(
            t =>
            {
                Log.BootstrapFailed(logger, t.Exception!);
                lifetime.StopApplication();
            },
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    private IResult SeedNodes()
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        // A node on its way out offers no seeds. (Before it joins, its own status reads Removed too: that node answers,
        // with no members, which is what tells the probing peers that no cluster exists yet.)
        if (cluster.SelfMember.Status is MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Leaving || cluster.IsTerminated)
        {
            return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }
        var state = cluster.State;
        var members = state.Members
            .Where(m => !state.Unreachable.Contains(m) && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining)
            .Select(m => new HttpBootstrapJsonProtocol.ClusterMember(m.UniqueAddress.Address, m.UniqueAddress.Uid, m.Status, m.Roles))
            .ToImmutableList();
        // Newtonsoft, as the probing side (HttpContactPointBootstrap) parses it.
        var json = Newtonsoft.Json.JsonConvert.SerializeObject(new HttpBootstrapJsonProtocol.SeedNodes(cluster.SelfMember.UniqueAddress.Address, members));
        return Results.Text(json, "application/json");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "cluster bootstrap: management endpoint {Uri} (bound to {Bind}), discovery {Discovery}")]
        public static partial void Started(ILogger logger, string uri, string bind, string discovery);

        [LoggerMessage(EventId = 4202, Level = LogLevel.Critical, Message = "cluster bootstrap failed to start; stopping")]
        public static partial void BootstrapFailed(ILogger logger, Exception exception);
    }
}
