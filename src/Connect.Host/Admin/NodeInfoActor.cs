using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Host.Tunnels;

namespace Connect.Host.Admin;

/// <summary>
/// One per node at <see cref="Path"/>: answers what this node holds (its links and their open streams, the
/// session entities it hosts, whether it drains) and starts a drain. The admin API on any node asks every
/// member's actor and merges; this actor only reads thread-safe snapshots and never waits on anything.
/// </summary>
public sealed class NodeInfoActor : ReceiveActor
{
    public const string Name = "connect-node-info";
    public const string Path = "/user/" + Name;

    private static readonly TimeSpan RegionTimeout = TimeSpan.FromSeconds(3);

    public NodeInfoActor(string address, LinkRegistry links, NodeLifecycle lifecycle, Connect.Proxy.ProxyDrain proxy, IActorRef region)
    {
        Receive<GetNodeInfo>(_ =>
        {
            // The links are read now; the entity list comes from the local shard region and is piped straight to the asker.
            var held = Snapshot(links);
            var draining = lifecycle.IsDraining;
            var reset = lifecycle.StreamsResetAtDeadline;
            var proxyInFlight = proxy.InFlight;
            region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).PipeTo(
                Sender,
                success: state => new NodeInfo(
                    address,
                    draining,
                    reset,
                    held,
                    state.Shards.SelectMany(s => s.EntityIds).Order(StringComparer.Ordinal).ToImmutableList(),
                    state.Shards.Count,
                    null,
                    proxyInFlight),
                failure: e => new NodeInfo(address, draining, reset, held, [], 0, $"the shard region did not answer: {e.Message}", proxyInFlight));
        });
        Receive<DrainNode>(drain =>
        {
            var already = lifecycle.IsDraining;
            var count = links.Count;
            var streams = links.ActiveStreams;
            if (!already)
            {
                // Not awaited: the drain takes up to its deadline; the asker polls readiness instead.
                _ = lifecycle.DrainAsync(drain.Reason, CancellationToken.None);
            }
            Sender.Tell(new DrainStarted(address, already, count, streams));
        });
        Receive<LeaveNode>(leave =>
        {
            // The node runs its own coordinated shutdown: the drain (a task in service-requests-done) and the
            // region's hand-off happen while this member is still Up; the cluster-leave phase comes after them.
            var shutdown = CoordinatedShutdown.Get(Context.System);
            var already = shutdown.ShutdownReason is not null;
            Sender.Tell(new LeaveStarted(address, already, links.Count, links.ActiveStreams));
            if (!already)
            {
                Context.GetLogger().Info("leave requested ({0}): draining while Up, then leaving the cluster", leave.Reason);
                _ = shutdown.Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
            }
        });
    }

    public static Props Props(string address, LinkRegistry links, NodeLifecycle lifecycle, Connect.Proxy.ProxyDrain proxy, IActorRef region) =>
        Akka.Actor.Props.Create(() => new NodeInfoActor(address, links, lifecycle, proxy, region));

    private static ImmutableList<LinkInfo> Snapshot(LinkRegistry links) =>
        links.All
            .OrderBy(l => l.Since)
            .Select(l => new LinkInfo(
                l.LinkId,
                l.SessionId,
                l.RemoteAddress,
                l.Since,
                l.Mux.ActiveStreams,
                l.Mux.StreamsOpened,
                l.Mux.BytesIn,
                l.Mux.BytesOut,
                l.Mux.IsGoingAway,
                l.Mux.Streams.Select(s => new StreamInfo(s.Id, s.Target, s.OpenedAt, s.BytesRead, s.BytesWritten)).ToImmutableList()))
            .ToImmutableList();
}
