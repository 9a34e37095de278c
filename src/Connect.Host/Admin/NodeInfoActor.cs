using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Connect.Actors.Protocol;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Routing.Links;

namespace Connect.Host.Admin;

/// <summary>
/// One per node at <see cref="Path"/>: answers what this node holds (its links and their open streams, the
/// session entities it hosts, whether it drains) and starts a drain. The admin API on any node asks every
/// member's actor and merges; this actor only reads thread-safe snapshots and never waits on anything.
/// Replies are counts (<see cref="GetNodeSummary"/>), pages (<see cref="GetNodeSessions"/>) or one session
/// (<see cref="GetNodeSession"/>), so none grows with the number of links (see docs/SCALING.md). It also hands out
/// this node's access-log entries of a session (<see cref="GetNodeRequests"/>), the entry node's side of a request,
/// and the usable links of a session here (<see cref="FindSessionLinks"/>), for a broker whose session entity is silent.
/// </summary>
public sealed class NodeInfoActor : ReceiveActor
{
    public const string Name = "connect-node-info";
    public const string Path = "/user/" + Name;

    private static readonly TimeSpan RegionTimeout = TimeSpan.FromSeconds(3);

    /// <summary>The most links one <see cref="NodeSessionsPage"/> carries: ~220 bytes each typically, ~530 at worst (longest names, IPv6, huge counters), so at most ~80 KB.</summary>
    public const int MaxLinksPerPage = 150;

    public NodeInfoActor(string address, LinkRegistry links, NodeLifecycle lifecycle, Connect.Proxy.ProxyDrain proxy, IActorRef region, Connect.Proxy.AccessLog accessLog, NodeIdentity identity)
    {
        Receive<FindSessionLinks>(query =>
        {
            // Read from the registry only (never the entity, which may be what is silent): the links that could take a
            // stream now, as the grants the entity would give for them. The entity hears of their streams from load reports.
            var usable = links.All
                .Where(l => l.SessionId == query.SessionId && !l.Actor.IsNobody() && !l.Mux.IsGoingAway && !l.Mux.IsClosed && !query.Exclude.Contains(l.LinkId))
                .OrderByDescending(l => l.Since)
                .Select(l => new StreamGranted(l.SessionId, l.LinkId, l.Actor, address, identity.DataEndpoint))
                .ToImmutableList();
            Sender.Tell(new SessionLinksFound(address, query.SessionId, usable));
        });
        Receive<GetNodeRequests>(query =>
        {
            var max = Math.Clamp(query.Max, 1, GetNodeRequests.MaxEntries);
            var entries = accessLog.Recent(query.SessionId, max).Select(e => new RequestRecord(
                e.At, e.SessionId, e.EntryNode, e.LinkNode, e.Method, e.Target, e.Status, e.BytesUp, e.BytesDown, e.DurationMs, e.Error, e.Detail));
            Sender.Tell(new NodeRequests(address, entries.ToImmutableList()));
        });
        Receive<GetNodeSummary>(_ =>
        {
            // Counted now, on this node: the deploy gate's answer does not depend on a list travelling anywhere.
            var all = links.All;
            var count = all.Count;
            var streams = all.Sum(l => l.Mux.ActiveStreams);
            var sessions = all.Select(l => l.SessionId).Distinct(StringComparer.Ordinal).Count();
            var draining = lifecycle.IsDraining;
            var reset = lifecycle.StreamsResetAtDeadline;
            var proxyInFlight = proxy.InFlight;
            var ready = count == 0 && streams == 0 && proxyInFlight == 0;
            var bytesIn = all.Sum(l => l.Mux.BytesIn);
            var bytesOut = all.Sum(l => l.Mux.BytesOut);
            region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).PipeTo(
                Sender,
                success: state => new NodeSummary(address, draining, reset, count, streams, sessions, state.Shards.Sum(s => s.EntityIds.Count), state.Shards.Count, null, proxyInFlight, ready, bytesIn, bytesOut),
                failure: e => new NodeSummary(address, draining, reset, count, streams, sessions, -1, -1, $"the shard region did not answer: {e.Message}", proxyInFlight, ready, bytesIn, bytesOut));
        });
        Receive<GetNodeSessions>(query =>
        {
            var after = query.After ?? string.Empty;
            var limit = Math.Clamp(query.Limit, 1, GetNodeSessions.MaxLimit);
            var held = links.All
                .Where(l => string.CompareOrdinal(l.SessionId, after) > 0)
                .GroupBy(l => l.SessionId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.OrderBy(l => l.Since).ToList(), StringComparer.Ordinal);
            region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).PipeTo(
                Sender,
                success: state => Page(address, held, state.Shards.SelectMany(s => s.EntityIds).Where(id => string.CompareOrdinal(id, after) > 0).ToHashSet(StringComparer.Ordinal), limit, null),
                failure: e => Page(address, held, [], limit, $"the shard region did not answer: {e.Message}"));
        });
        Receive<GetNodeSession>(query =>
        {
            var held = links.All.Where(l => l.SessionId == query.SessionId).OrderBy(l => l.Since).ToList();
            var budget = GetNodeSession.MaxStreams;
            var omitted = 0;
            var infos = held.Select(l =>
            {
                var streams = l.Mux.Streams.OrderBy(s => s.OpenedAt).ToList();
                var listed = streams.Take(Math.Max(0, budget)).ToList();
                budget -= listed.Count;
                omitted += streams.Count - listed.Count;
                return Info(l, listed.Select(s => new StreamInfo(s.Id, s.Target, s.OpenedAt, s.BytesRead, s.BytesWritten)).ToImmutableList());
            }).ToImmutableList();
            region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, RegionTimeout).PipeTo(
                Sender,
                success: state => new NodeSession(address, query.SessionId, state.Shards.Any(s => s.EntityIds.Contains(query.SessionId)), infos, omitted, null),
                failure: e => new NodeSession(address, query.SessionId, false, infos, omitted, $"the shard region did not answer: {e.Message}"));
        });
        // Kept for members of the previous release during a rolling deploy: they still ask for the whole list (and
        // lose the answer past ~1,000 links). This release never asks it.
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

    public static Props Props(string address, LinkRegistry links, NodeLifecycle lifecycle, Connect.Proxy.ProxyDrain proxy, IActorRef region, Connect.Proxy.AccessLog accessLog, NodeIdentity identity) =>
        Akka.Actor.Props.Create(() => new NodeInfoActor(address, links, lifecycle, proxy, region, accessLog, identity));

    /// <summary>The first <paramref name="limit"/> session names after the cursor among links and entities here, bounded by <see cref="MaxLinksPerPage"/>.</summary>
    private static NodeSessionsPage Page(string address, Dictionary<string, List<TunnelLink>> held, HashSet<string> entities, int limit, string? error)
    {
        var names = held.Keys.Union(entities, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var page = ImmutableList.CreateBuilder<NodeSessionEntry>();
        var linkCount = 0;
        foreach (var name in names)
        {
            var sessionLinks = held.TryGetValue(name, out var l) ? l : [];
            if (page.Count == limit || (page.Count > 0 && linkCount + sessionLinks.Count > MaxLinksPerPage))
            {
                break;
            }
            linkCount += sessionLinks.Count;
            page.Add(new NodeSessionEntry(name, entities.Contains(name), sessionLinks.Select(x => Info(x, [])).ToImmutableList()));
        }
        return new NodeSessionsPage(address, page.ToImmutable(), page.Count < names.Count, error);
    }

    private static LinkInfo Info(TunnelLink l, ImmutableList<StreamInfo> streams) =>
        new(l.LinkId, l.SessionId, l.RemoteAddress, l.Since, l.Mux.ActiveStreams, l.Mux.StreamsOpened, l.Mux.BytesIn, l.Mux.BytesOut, l.Mux.IsGoingAway, streams);

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
