using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Connect.Actors.Mailboxes;
using Connect.Actors.Protocol;
using Connect.Actors.Serialization;
using Connect.Actors.Sessions;
using Connect.Host.Admin;
using Connect.Host.Bootstrap;
using Connect.Host.Draining;

namespace Connect.Host.Configuration;

/// <summary>The node's Akka.NET side: remoting, cluster membership and the session shard region.</summary>
public static class AkkaSetup
{
    // Shutdown is driven by the host: drain (NodeLifecycle) first, then Akka's coordinated shutdown, then Kestrel.
    // Durable DData keys are off: LightningDB 0.23.1 (the only one served) breaks durable storage, and sessions
    // are re-established by their links, so nothing needs to survive a restart.
    private const string Hocon = """
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        akka.coordinated-shutdown.phases.cluster-sharding-shutdown-region.timeout = 20s
        akka.cluster.sharding.distributed-data.durable.keys = []
        akka.cluster.sharding.handoff-timeout = 20s
        akka.remote.dot-netty.tcp.maximum-frame-size = 256000b
        akka.cluster.log-info-verbose = off
        """ + "\n" + LeanMailbox.Hocon;

    /// <summary>A role carrying this node's tunnel URL (known when the port is fixed), read by draining nodes for GOAWAY suggestions.</summary>
    private static IEnumerable<string> TunnelUrlRole(ConnectSettings settings)
    {
        // Same rule as the banner (AdvertisedUrls): wss:// when the tunnel has a certificate, so a drain never downgrades agents.
        var url = AdvertisedUrls.AdvertisedTunnel(settings);
        return string.IsNullOrWhiteSpace(url) ? [] : [NodeLifecycle.TunnelUrlRole(url)];
    }

    private static RemoteOptions RemoteOptionsFor(ConnectSettings settings, Connect.Routing.Security.ClusterTls tls)
    {
        var remote = new RemoteOptions
        {
            // The private side: Akka.Remote binds the cluster address, never the public one.
            HostName = settings.ClusterBindAddress,
            PublicHostName = settings.ClusterAdvertisedHost,
            Port = settings.Cluster.Port,
        };
        if (tls.Certificate is { } certificate)
        {
            // TLS with mutual authentication; a peer must present this very certificate (pinned, not the system's trust store).
            remote.EnableSsl = true;
            remote.Ssl = new SslOptions
            {
                X509Certificate = certificate,
                SuppressValidation = false,
                RequireMutualAuthentication = true,
                ValidateCertificateHostname = false,
                CustomValidator = (peer, _, _, _, _) => tls.Accepts(peer),
            };
        }
        return remote;
    }

    public static IServiceCollection AddConnectCluster(this IServiceCollection services, ConnectSettings settings, Connect.Routing.Security.ClusterTls tls)
    {
        var cluster = settings.Cluster;
        services.AddAkka(cluster.SystemName, (builder, provider) =>
        {
            // Keep-majority split-brain resolver: a minority side downs itself, so a session entity never runs twice.
            var downing = $$"""
                akka.cluster.downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                akka.cluster.split-brain-resolver.active-strategy = keep-majority
                akka.cluster.split-brain-resolver.stable-after = {{(int)cluster.DowningStableAfter.TotalMilliseconds}}ms
                """;
            builder
                .AddHocon(Hocon, HoconAddMode.Prepend)
                .AddHocon(downing, HoconAddMode.Prepend)
                .ConfigureLoggers(loggers =>
                {
                    loggers.LogLevel = Akka.Event.LogLevel.InfoLevel;
                    loggers.ClearLoggers();
                    loggers.AddLoggerFactory();
                })
                .WithCustomSerializer("connect", [typeof(IConnectMessage)], system => new ConnectMessageSerializer(system))
                .WithRemoting(RemoteOptionsFor(settings, tls))
                .WithClustering(new ClusterOptions
                {
                    SeedNodes = cluster.SeedNodes.Count > 0 ? cluster.SeedNodes.ToArray() : null,
                    Roles = cluster.Roles.Concat(TunnelUrlRole(settings)).Append(ShardCountGuard.Role(settings.Sessions.ShardCount)).ToArray(),
                })
                .WithShardRegion<SessionRegion>(
                    SessionRegion.TypeName,
                    // One entity per session, idle between a link's reports: the lean mailbox (no 32-slot queue segment each).
                    sessionId => SessionActor.Props(sessionId, settings.Sessions, provider.GetRequiredService<ILoggerFactory>(), provider.GetRequiredService<TimeProvider>())
                        .WithMailbox(LeanMailbox.Id),
                    new SessionMessageExtractor(settings.Sessions.ShardCount),
                    new ShardOptions
                    {
                        StateStoreMode = StateStoreMode.DData,
                        RememberEntities = false,
                        // Sessions live as long as their links; the entity stops itself when it has neither links nor requests.
                        ShouldPassivateIdleEntities = false,
                    });
            builder.WithAppVersion(RollingUpgradeSetup.AppVersion(typeof(AkkaSetup).Assembly));
            if (!string.IsNullOrWhiteSpace(cluster.Hocon))
            {
                builder.AddHocon(cluster.Hocon, HoconAddMode.Prepend);
            }
            builder.WithNodeInfoActor(provider);
            builder.WithActors((system, _, _) => system.ActorOf(
                ShardCountGuard.Props(
                    settings.Sessions.ShardCount,
                    provider.GetRequiredService<ILoggerFactory>().CreateLogger<ShardCountGuard>(),
                    () => provider.GetRequiredService<IHostApplicationLifetime>().StopApplication()),
                ShardCountGuard.Name));
            // A leave issued from any node runs coordinated shutdown here; its service-requests-done phase waits for the
            // drain, and the phase timeout is sized above the drain deadline so Akka's default timer never cuts it short.
            var drainPhase = settings.Drain.Deadline + settings.Drain.ProxyGrace + TimeSpan.FromSeconds(10);
            builder.AddHocon($"akka.coordinated-shutdown.phases.service-requests-done.timeout = {(int)drainPhase.TotalMilliseconds}ms", HoconAddMode.Prepend);
            builder.AddStartup((system, _) =>
            {
                var lifecycle = provider.GetRequiredService<NodeLifecycle>();
                CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceRequestsDone, "connect-drain", async () =>
                {
                    await lifecycle.DrainAsync("leaving the cluster", CancellationToken.None).ConfigureAwait(false);
                    return Akka.Done.Instance;
                });
            });
            if (cluster.Bootstrap.Enabled)
            {
                // Bootstrap finds the peers and joins (or, when none knows a cluster, forms) the cluster: no self-join here.
                builder.WithConnectBootstrap(settings);
            }
            else if (cluster.SeedNodes.Count == 0)
            {
                // No seeds: form a cluster of one (the embedded default and single-node tests).
                builder.AddStartup((system, _) =>
                {
                    var self = Cluster.Get(system);
                    self.Join(self.SelfAddress);
                });
            }
        });
        if (settings.Cluster.Bootstrap.Enabled)
        {
            // After AddAkka, so it starts once the actor system runs (and stops before it).
            services.AddHostedService<Connect.Host.Bootstrap.ManagementEndpoint>();
        }
        return services;
    }
}
