using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Connect.Admin.Contracts;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;
using Connect.Host.Configuration;
using Connect.Host.Draining;
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

    /// <summary>The most sessions one <c>/v1/sessions</c> page lists.</summary>
    public const int MaxSessionsPerPage = 1000;

    /// <summary>A page of <c>/v1/sessions</c> when the caller gives no limit.</summary>
    public const int DefaultSessionsPerPage = 100;

    // A filtered listing (node, state) walks the cluster's sessions in rounds of per-node pages; this bounds one
    // request's work (50 rounds of one page per node), the rest is reached with the next cursor.
    private const int MaxRounds = 50;

    /// <summary>One member and what it said about itself (or why it did not).</summary>
    public sealed record MemberAnswer(Member Member, bool Reachable, NodeSummary? Info, string? Error);

    /// <summary>One member's answer to a query (null with <paramref name="Error"/> when it was not asked or did not answer).</summary>
    private sealed record Answer<T>(Member Member, bool Reachable, T? Value, string? Error) where T : class;

    /// <summary>Asks every member (or those <paramref name="only"/> picks) the same question, each with the timeout; unreachable members are not asked.</summary>
    private async Task<IReadOnlyList<Answer<T>>> AskEachAsync<T>(object question, Func<Member, bool>? only, CancellationToken cancellationToken) where T : class
    {
        var state = Cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var asks = state.Members.Where(m => only is null || only(m)).OrderBy(m => m.Address.ToString(), StringComparer.Ordinal).Select(async member =>
        {
            if (unreachable.Contains(member.Address))
            {
                return new Answer<T>(member, false, null, "unreachable; not asked");
            }
            try
            {
                var value = await system.ActorSelection(member.Address + NodeInfoActor.Path)
                    .Ask<T>(question, Timeout, cancellationToken).ConfigureAwait(false);
                return new Answer<T>(member, true, value, null);
            }
            catch (AskTimeoutException)
            {
                return new Answer<T>(member, true, null, $"no answer within {Timeout.TotalSeconds:0.#} s");
            }
        });
        return await Task.WhenAll(asks).ConfigureAwait(false);
    }

    /// <summary>Every member's counts (one small reply each, whatever it holds), or only the member at <paramref name="address"/>.</summary>
    public async Task<IReadOnlyList<MemberAnswer>> AskMembersAsync(CancellationToken cancellationToken, Address? address = null)
    {
        var answers = await AskEachAsync<NodeSummary>(GetNodeSummary.Instance, address is null ? null : m => m.Address.Equals(address), cancellationToken).ConfigureAwait(false);
        return answers.Select(a => new MemberAnswer(a.Member, a.Reachable, a.Value, a.Error ?? a.Value?.EntitiesError)).ToList();
    }

    /// <summary>Every member with its counts; with <paramref name="address"/> only that member, asked directly (the deploy gate's question).</summary>
    public async Task<NodesView> NodesAsync(CancellationToken cancellationToken, Address? address = null)
    {
        var answers = await AskMembersAsync(cancellationToken, address).ConfigureAwait(false);
        var leader = Cluster.State.Leader?.ToString();
        var self = SelfAddress;
        var nodes = answers.Select(a =>
        {
            var member = a.Member.Address.ToString();
            var info = a.Info;
            var regionAnswered = info is not null && info.EntitiesError is null;
            return new NodeView(
                member,
                member == self,
                member == leader,
                Addresses.OperatorRoles(a.Member.Roles),
                a.Member.Status.ToString(),
                a.Reachable,
                info?.Links,
                info?.Streams,
                info?.Sessions,
                regionAnswered ? info!.Entities : null,
                regionAnswered ? info!.Shards : null,
                info?.Draining,
                info?.StreamsResetAtDeadline,
                info?.ReadyToTerminate ?? false,
                a.Error,
                info?.BytesIn,
                info?.BytesOut);
        }).ToList();
        return new NodesView(self, leader, nodes);
    }

    /// <summary>
    /// One page of sessions, sorted by name, after <paramref name="after"/>: read from every node's link registry and
    /// shard region in per-node pages (<see cref="GetNodeSessions"/>), never by asking the entities. Links, streams and
    /// state come from the links' own nodes; <c>streamsGranted</c> counts the streams opened on the current links, and
    /// the entity's own counters (waiting requests, refusals) are in <see cref="SessionAsync"/>.
    /// </summary>
    public async Task<SessionsView> SessionsAsync(string? node, SessionActivity? state, string? after, int? limit, CancellationToken cancellationToken)
    {
        var wanted = Math.Clamp(limit ?? DefaultSessionsPerPage, 1, MaxSessionsPerPage);
        var views = new List<SessionView>();
        var errors = new List<string>();
        var cursor = after;
        string? next = null;
        for (var round = 0; round < MaxRounds; round++)
        {
            var ask = Math.Min(GetNodeSessions.MaxLimit, wanted - views.Count);
            var answers = await AskEachAsync<NodeSessionsPage>(new GetNodeSessions(cursor, ask), null, cancellationToken).ConfigureAwait(false);
            errors.AddRange(answers.Where(a => a.Error is not null || a.Value?.EntitiesError is not null)
                .Select(a => $"{a.Member.Address}: {a.Error ?? a.Value!.EntitiesError}").Where(e => !errors.Contains(e)).ToList());
            if (answers.Any(a => a.Reachable && a.Value is null))
            {
                // A reachable member did not answer: its sessions after the cursor are unknown, so the page ends here
                // and the next one starts at the same cursor (never skip a member's sessions without saying so).
                var silent = string.Join("; ", answers.Where(a => a.Reachable && a.Value is null).Select(a => $"{a.Member.Address}: {a.Error}"));
                if (round == 0)
                {
                    throw new TimeoutException($"listing sessions after '{cursor}': {silent}");
                }
                errors.Add($"page ended early: {silent}");
                next = cursor;
                break;
            }
            var pages = answers.Where(a => a.Value is not null).Select(a => a.Value!).ToList();
            // A node that has more names after its page knows nothing about names past its last one yet: the merged
            // page stops there, so a name is listed only once every node has said all it holds about it.
            var cutoff = pages.Where(p => p.More && p.Sessions.Count > 0).Select(p => p.Sessions[^1].SessionId).Min(StringComparer.Ordinal);
            var merged = pages
                .SelectMany(p => p.Sessions.Select(entry => (p.Address, Entry: entry)))
                .Where(x => cutoff is null || string.CompareOrdinal(x.Entry.SessionId, cutoff) <= 0)
                .GroupBy(x => x.Entry.SessionId, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToList();
            var taken = merged.Take(ask).ToList();
            foreach (var group in taken)
            {
                var view = ToView(group.Key, group.ToList());
                if (node is not null && !Addresses.Match(view.EntityNode, node) && !view.Links.Any(l => Addresses.Match(l.Node, node)))
                {
                    continue;
                }
                if (state is not null && !string.Equals(view.State, state.Value.ToString(), StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }
                views.Add(view);
            }
            var more = taken.Count < merged.Count || cutoff is not null;
            if (!more)
            {
                next = null;
                break;
            }
            cursor = taken.Count > 0 ? taken[^1].Key : cutoff;
            next = cursor;
            if (views.Count >= wanted)
            {
                break;
            }
        }
        return new SessionsView(views, errors, next);
    }

    /// <summary>Null when no node hosts the session's entity and no link serves it (asking would create the entity).</summary>
    public async Task<SessionDetailView?> SessionAsync(string name, CancellationToken cancellationToken)
    {
        var answers = await AskEachAsync<NodeSession>(new GetNodeSession(name), null, cancellationToken).ConfigureAwait(false);
        var errors = answers.Where(a => a.Error is not null || a.Value?.EntitiesError is not null).Select(a => $"{a.Member.Address}: {a.Error ?? a.Value!.EntitiesError}").ToList();
        var known = answers.Any(a => a.Value is not null && (a.Value.EntityHere || a.Value.Links.Count > 0));
        if (!known)
        {
            return null;
        }
        var (_, snapshot, error) = await SnapshotAsync(name, cancellationToken).ConfigureAwait(false);
        if (snapshot is null)
        {
            throw new TimeoutException($"session '{name}': {error}");
        }
        errors.AddRange(answers.Where(a => a.Value is { StreamsOmitted: > 0 }).Select(a => $"{a.Member.Address}: {a.Value!.StreamsOmitted} more open streams not listed (the newest)"));
        var now = DateTimeOffset.UtcNow;
        var streams = answers
            .Where(a => a.Value is not null)
            .SelectMany(a => a.Value!.Links.SelectMany(l => l.Streams.Select(s =>
                new StreamView(l.LinkId, a.Value.Address, s.StreamId, s.Target, s.OpenedAt, Math.Round((now - s.OpenedAt).TotalSeconds, 3), s.BytesRead, s.BytesWritten))))
            .OrderBy(s => s.OpenedAt)
            .ToList();
        return new SessionDetailView(ToView(snapshot), streams, errors);
    }

    /// <summary>
    /// The session's last proxy requests from every node's access log (each node logs the requests it took), merged
    /// oldest first and cut to the newest <paramref name="max"/>. Asks no entity, so an unknown session just has none.
    /// </summary>
    public async Task<SessionRequestsView> RequestsAsync(string name, CancellationToken cancellationToken, int max = 50)
    {
        var answers = await AskEachAsync<NodeRequests>(new GetNodeRequests(name, max), null, cancellationToken).ConfigureAwait(false);
        var requests = answers
            .Where(a => a.Value is not null)
            .SelectMany(a => a.Value!.Requests)
            .OrderBy(r => r.At)
            .TakeLast(max)
            .Select(r => new RequestView(r.At, r.SessionId, r.EntryNode, r.LinkNode, r.Method, r.Target, r.Status, r.BytesUp, r.BytesDown, r.DurationMs, r.Error, r.Detail))
            .ToList();
        return new SessionRequestsView(name, requests, answers.Where(a => a.Error is not null).Select(a => $"{a.Member.Address}: {a.Error}").ToList());
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

    /// <summary>A session as the nodes' registries show it: the entity's node, and its links where their sockets end.</summary>
    private static SessionView ToView(string name, IReadOnlyList<(string Address, NodeSessionEntry Entry)> seen)
    {
        var links = seen.SelectMany(x => x.Entry.Links.Select(l => new SessionLinkView(l.LinkId, x.Address, l.Since, l.ActiveStreams, l.StreamsOpened, l.BytesIn, l.BytesOut, l.GoingAway)))
            .OrderBy(l => l.Since)
            .ToList();
        // The entity's own rule (SessionDecisions.Activity), applied to the links as their nodes see them now.
        var activity = links.Count == 0 ? SessionActivity.Disconnected
            : links.All(l => l.GoingAway) ? SessionActivity.Draining
            : links.Any(l => l.Streams > 0) ? SessionActivity.Busy
            : SessionActivity.Idle;
        var entityNode = seen.FirstOrDefault(x => x.Entry.EntityHere).Address ?? string.Empty;
        return new SessionView(name, entityNode, activity.ToString().ToLowerInvariant(), links, links.Sum(l => l.Streams), 0, links.Sum(l => l.StreamsOpened), 0);
    }

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
    /// advertises as an encoded role (tunnel-url-...), its session shard count (shards-N) and Akka's data-center role
    /// (dc-default) mean nothing to a reader.
    /// </summary>
    public static List<string> OperatorRoles(IEnumerable<string> roles) =>
        roles.Where(r => !r.StartsWith(NodeLifecycle.TunnelUrlRolePrefix, StringComparison.Ordinal)
                && !r.StartsWith(ShardCountGuard.RolePrefix, StringComparison.Ordinal)
                && !r.StartsWith("dc-", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
}
