using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;
using Connect.Host.Configuration;
using Connect.Host.Tunnels;
using Microsoft.Extensions.Options;

namespace Connect.Host.Admin;

/// <summary>
/// The admin API's view of the whole cluster from this node: asks every reachable member's
/// <see cref="NodeInfoActor"/> and the session entities (through the shard region), each with the request's
/// cancellation token and a timeout, and merges the answers. Only this edge asks; the actors just answer.
/// </summary>
public sealed class ClusterView(ActorSystem system, IRequiredActor<SessionRegion> region, IOptions<ConnectSettings> settings)
{
    private TimeSpan Timeout => settings.Value.Admin.QueryTimeout;

    private Cluster Cluster => Cluster.Get(system);

    public string SelfAddress => Cluster.SelfAddress.ToString();

    /// <summary>One member and what it said about itself (or why it did not).</summary>
    public sealed record MemberAnswer(Member Member, bool Reachable, NodeInfo? Info, string? Error);

    public async Task<IReadOnlyList<MemberAnswer>> AskMembersAsync(CancellationToken cancellationToken)
    {
        var state = Cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var asks = state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal).Select(async member =>
        {
            if (unreachable.Contains(member.Address))
            {
                return new MemberAnswer(member, false, null, "unreachable; not asked");
            }
            try
            {
                var info = await system.ActorSelection(member.Address + NodeInfoActor.Path)
                    .Ask<NodeInfo>(GetNodeInfo.Instance, Timeout, cancellationToken).ConfigureAwait(false);
                return new MemberAnswer(member, true, info, info.EntitiesError);
            }
            catch (AskTimeoutException)
            {
                return new MemberAnswer(member, true, null, $"no answer within {Timeout.TotalSeconds:0.#} s");
            }
        });
        return await Task.WhenAll(asks).ConfigureAwait(false);
    }

    public async Task<NodesView> NodesAsync(CancellationToken cancellationToken)
    {
        var answers = await AskMembersAsync(cancellationToken).ConfigureAwait(false);
        var leader = Cluster.State.Leader?.ToString();
        var self = SelfAddress;
        var nodes = answers.Select(a =>
        {
            var address = a.Member.Address.ToString();
            var info = a.Info;
            return new NodeView(
                address,
                address == self,
                address == leader,
                Addresses.OperatorRoles(a.Member.Roles),
                a.Member.Status.ToString(),
                a.Reachable,
                info?.Links.Count,
                info?.ActiveStreams,
                info?.Links.Select(l => l.SessionId).Distinct().Count(),
                info is null || info.EntitiesError is not null ? null : info.Entities.Count,
                info is null || info.EntitiesError is not null ? null : info.Shards,
                info?.Draining,
                info?.StreamsResetAtDeadline,
                info is not null && info.Links.Count == 0 && info.ActiveStreams == 0 && info.ProxyInFlight == 0,
                a.Error);
        }).ToList();
        return new NodesView(self, leader, nodes);
    }

    public async Task<SessionsView> SessionsAsync(string? node, SessionActivity? state, CancellationToken cancellationToken)
    {
        var answers = await AskMembersAsync(cancellationToken).ConfigureAwait(false);
        var errors = Errors(answers);
        // Every session the cluster knows: entities hosted anywhere, plus sessions with a link whose entity is not (yet) listed.
        var names = answers.Where(a => a.Info is not null)
            .SelectMany(a => a.Info!.Entities.Concat(a.Info.Links.Select(l => l.SessionId)))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        var snapshots = await Task.WhenAll(names.Select(name => SnapshotAsync(name, cancellationToken))).ConfigureAwait(false);
        var views = new List<SessionView>();
        foreach (var (name, snapshot, error) in snapshots)
        {
            if (snapshot is null)
            {
                errors.Add($"session '{name}': {error}");
                continue;
            }
            var view = ToView(snapshot);
            if (node is not null && !Addresses.Match(view.EntityNode, node) && !view.Links.Any(l => Addresses.Match(l.Node, node)))
            {
                continue;
            }
            if (state is not null && snapshot.State != state)
            {
                continue;
            }
            views.Add(view);
        }
        return new SessionsView(views, errors);
    }

    /// <summary>Null when no node hosts the session's entity and no link serves it (asking would create the entity).</summary>
    public async Task<SessionDetailView?> SessionAsync(string name, CancellationToken cancellationToken)
    {
        var answers = await AskMembersAsync(cancellationToken).ConfigureAwait(false);
        var errors = Errors(answers);
        var known = answers.Any(a => a.Info is not null && (a.Info.Entities.Contains(name) || a.Info.Links.Any(l => l.SessionId == name)));
        if (!known)
        {
            return null;
        }
        var (_, snapshot, error) = await SnapshotAsync(name, cancellationToken).ConfigureAwait(false);
        if (snapshot is null)
        {
            throw new TimeoutException($"session '{name}': {error}");
        }
        var now = DateTimeOffset.UtcNow;
        var streams = answers
            .Where(a => a.Info is not null)
            .SelectMany(a => a.Info!.Links.Where(l => l.SessionId == name).SelectMany(l => l.Streams.Select(s =>
                new StreamView(l.LinkId, a.Info.Address, s.StreamId, s.Target, s.OpenedAt, Math.Round((now - s.OpenedAt).TotalSeconds, 3), s.BytesRead, s.BytesWritten))))
            .OrderBy(s => s.OpenedAt)
            .ToList();
        return new SessionDetailView(ToView(snapshot), streams, errors);
    }

    public async Task<SessionSnapshot> KickAsync(string name, CancellationToken cancellationToken) =>
        await region.ActorRef.Ask<SessionSnapshot>(new MoveSessionLinks(name, "moved by an operator (connectctl connect kick)"), Timeout, cancellationToken).ConfigureAwait(false);

    public async Task<DrainStarted> DrainAsync(Address address, CancellationToken cancellationToken) =>
        await system.ActorSelection(address + NodeInfoActor.Path)
            .Ask<DrainStarted>(new DrainNode("drain requested through the admin API"), Timeout, cancellationToken).ConfigureAwait(false);

    public async Task<ShardingView> ShardingAsync(CancellationToken cancellationToken)
    {
        var sharding = ClusterSharding.Get(system);
        var regions = new List<RegionView>();
        foreach (var typeName in sharding.ShardTypeNames.Order(StringComparer.Ordinal))
        {
            try
            {
                var stats = await sharding.ShardRegion(typeName)
                    .Ask<ClusterShardingStats>(new GetClusterShardingStats(Timeout), Timeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                var nodes = stats.Regions
                    .OrderBy(r => r.Key.ToString(), StringComparer.Ordinal)
                    .Select(r => new RegionNodeView(r.Key.ToString(), r.Value.Stats.Count, r.Value.Stats.Values.Sum(), r.Value.Stats.ToImmutableSortedDictionary(StringComparer.Ordinal)))
                    .ToList();
                var failed = stats.Regions.Values.SelectMany(r => r.Failed).Order(StringComparer.Ordinal).ToList();
                regions.Add(new RegionView(typeName, nodes.Sum(n => n.Shards), nodes.Sum(n => n.Entities), nodes, failed, null));
            }
            catch (AskTimeoutException)
            {
                regions.Add(new RegionView(typeName, 0, 0, [], [], $"no answer within {Timeout.TotalSeconds:0.#} s"));
            }
        }
        return new ShardingView(regions);
    }

    /// <summary>The member whose address matches <paramref name="given"/> (full or host:port), or this node when none is given.</summary>
    public Member? FindMember(string? given)
    {
        var state = Cluster.State;
        if (string.IsNullOrWhiteSpace(given))
        {
            return state.Members.FirstOrDefault(m => m.Address.Equals(Cluster.SelfAddress));
        }
        var matches = state.Members.Where(m => Addresses.Match(m.Address.ToString(), given)).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    public void Leave(Address address) => Cluster.Leave(address);

    /// <summary>
    /// Asks the member itself to leave (<see cref="LeaveNode"/>): it drains while Up, then leaves. Null when it did not
    /// answer (a build without <see cref="LeaveNode"/>, or unreachable); the caller then falls back to <see cref="Leave"/>.
    /// </summary>
    public async Task<LeaveStarted?> AskToLeaveAsync(Address address, CancellationToken cancellationToken)
    {
        try
        {
            return await system.ActorSelection(address + NodeInfoActor.Path)
                .Ask<LeaveStarted>(new LeaveNode("leave requested through the admin API"), Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    public void Down(Address address) => Cluster.Down(address);

    public IReadOnlyList<Address> DownUnreachable()
    {
        var unreachable = Cluster.State.Unreachable.Select(m => m.Address).ToList();
        foreach (var address in unreachable)
        {
            Cluster.Down(address);
        }
        return unreachable;
    }

    private async Task<(string Name, SessionSnapshot? Snapshot, string? Error)> SnapshotAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return (name, await region.ActorRef.Ask<SessionSnapshot>(new GetSession(name), Timeout, cancellationToken).ConfigureAwait(false), null);
        }
        catch (AskTimeoutException)
        {
            return (name, null, $"the entity did not answer within {Timeout.TotalSeconds:0.#} s");
        }
    }

    private static List<string> Errors(IEnumerable<MemberAnswer> answers) =>
        answers.Where(a => a.Error is not null).Select(a => $"{a.Member.Address}: {a.Error}").ToList();

    public static SessionView ToView(SessionSnapshot snapshot) => new(
        snapshot.SessionId,
        snapshot.EntityNode,
        snapshot.State.ToString().ToLowerInvariant(),
        snapshot.Links.Select(l => new SessionLinkView(l.LinkId, l.Node, l.Since, l.Load.ActiveStreams, l.Load.StreamsOpened, l.Load.BytesIn, l.Load.BytesOut, l.Load.GoingAway)).ToList(),
        snapshot.Links.Sum(l => l.Load.ActiveStreams),
        snapshot.PendingOpens,
        snapshot.StreamsGranted,
        snapshot.StreamsRefused);
}

/// <summary>Operators type node addresses in full (<c>akka.tcp://connect@10.0.0.5:7090</c>) or short (<c>10.0.0.5:7090</c>).</summary>
public static class Addresses
{
    public static bool Match(string full, string given)
    {
        given = given.Trim().TrimEnd('/');
        return string.Equals(full, given, StringComparison.OrdinalIgnoreCase)
            || full.EndsWith("@" + given, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The roles an operator configured (Connect:Cluster:Roles). Internal roles are left out: the tunnel URL a node
    /// advertises as an encoded role (tunnel-url-...) and Akka's data-center role (dc-default) mean nothing to a reader.
    /// </summary>
    public static List<string> OperatorRoles(IEnumerable<string> roles) =>
        roles.Where(r => !r.StartsWith(NodeLifecycle.TunnelUrlRolePrefix, StringComparison.Ordinal) && !r.StartsWith("dc-", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
}
