using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Protocol;

namespace Connect.Actors.Sessions;

/// <summary>One attached link as the entity sees it.</summary>
public sealed record LinkEntry(string LinkId, IActorRef Link, string Node, string DataEndpoint, DateTimeOffset Since, LinkLoad Load, int GrantsSinceReport)
{
    /// <summary>Streams the link has, counting grants it has not yet reported.</summary>
    public int EstimatedStreams => Load.ActiveStreams + GrantsSinceReport;
}

/// <summary>The session entity's state; the decisions over it are pure functions in <see cref="SessionDecisions"/>.</summary>
public sealed record SessionState(ImmutableDictionary<string, LinkEntry> Links, long StreamsGranted, long StreamsRefused)
{
    public static readonly SessionState Empty = new(ImmutableDictionary<string, LinkEntry>.Empty, 0, 0);

    public int EstimatedStreams => Links.Values.Sum(l => l.EstimatedStreams);
}

/// <summary>The session's decisions, free of actors so tests can call them directly.</summary>
public static class SessionDecisions
{
    /// <summary>
    /// The link a new stream goes to: not going away, not excluded, least loaded; newest wins a tie (it is where the
    /// agent moved to). A link on a node in <paramref name="unreachableNodes"/> (crashed, frozen or cut off, and not yet
    /// downed) is picked only when no other link can take the stream: the open would wait for the silent node or fail
    /// and cost the request a round trip, while the session's other link serves it at once.
    /// </summary>
    public static LinkEntry? PickLink(SessionState state, ImmutableHashSet<string> exclude, IReadOnlySet<string>? unreachableNodes = null)
    {
        // One pass, not LINQ's OrderBy(...).ThenByDescending(...): every load report comes here (the entity's
        // StateChanged), and the ordered iterator's generic virtual calls cost ~25 us a time, profiled at 10,000 idle
        // links as 6 % of the node's idle CPU (docs/SCALING.md "Idle CPU: the profile"). Same order: fewest estimated
        // streams, then the newest link, the first of equals.
        var avoid = unreachableNodes is { Count: > 0 };
        LinkEntry? best = null;
        LinkEntry? bestReachable = null;
        foreach (var link in state.Links.Values)
        {
            if (link.Load.GoingAway || exclude.Contains(link.LinkId))
            {
                continue;
            }
            if (Before(link, best))
            {
                best = link;
            }
            if (avoid && !unreachableNodes!.Contains(link.Node) && Before(link, bestReachable))
            {
                bestReachable = link;
            }
        }
        return bestReachable ?? best;
    }

    private static bool Before(LinkEntry link, LinkEntry? other) =>
        other is null
        || link.EstimatedStreams < other.EstimatedStreams
        || (link.EstimatedStreams == other.EstimatedStreams && link.Since > other.Since);

    public static SessionActivity Activity(SessionState state)
    {
        if (state.Links.IsEmpty)
        {
            return SessionActivity.Disconnected;
        }
        if (state.Links.Values.All(l => l.Load.GoingAway))
        {
            return SessionActivity.Draining;
        }
        return state.Links.Values.Any(l => l.Load.ActiveStreams > 0) ? SessionActivity.Busy : SessionActivity.Idle;
    }

    public static SessionState Attach(SessionState state, AttachLink attach) =>
        state with
        {
            Links = state.Links.SetItem(attach.LinkId, new LinkEntry(attach.LinkId, attach.Link, attach.Node, attach.DataEndpoint, attach.Since, attach.Load, 0)),
        };

    /// <summary>
    /// Why a link may not attach, or null. Only a link attaching for the first time is refused, and only when the
    /// session already holds <paramref name="maxLinks"/> links that are not going away; a link the entity knows, a
    /// re-attach (entity moved) or a link that is itself going away always attaches.
    /// </summary>
    public static string? AttachRefusal(SessionState state, AttachLink attach, int maxLinks)
    {
        if (!attach.FirstAttach || attach.Load.GoingAway || state.Links.ContainsKey(attach.LinkId))
        {
            return null;
        }
        var holding = state.Links.Values.Count(l => !l.Load.GoingAway);
        return holding >= maxLinks
            ? $"session '{attach.SessionId}' already holds {holding} links, its limit (Connect:Sessions:MaxLinksPerSession = {maxLinks}); close one or raise the limit"
            : null;
    }

    public static SessionState Detach(SessionState state, string linkId) => state with { Links = state.Links.Remove(linkId) };

    public static SessionState DetachActor(SessionState state, IActorRef link) =>
        state with { Links = state.Links.RemoveRange(state.Links.Values.Where(l => l.Link.Equals(link)).Select(l => l.LinkId).ToList()) };

    public static SessionState Report(SessionState state, string linkId, LinkLoad load) =>
        state.Links.TryGetValue(linkId, out var entry)
            ? state with { Links = state.Links.SetItem(linkId, entry with { Load = load, GrantsSinceReport = 0 }) }
            : state;

    public static SessionState Granted(SessionState state, LinkEntry link) =>
        state with
        {
            Links = state.Links.SetItem(link.LinkId, link with { GrantsSinceReport = link.GrantsSinceReport + 1 }),
            StreamsGranted = state.StreamsGranted + 1,
        };
}
