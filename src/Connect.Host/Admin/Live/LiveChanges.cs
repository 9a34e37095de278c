using Connect.Admin.Contracts;

namespace Connect.Host.Admin.Live;

/// <summary>
/// What changed between two samples of the cluster, in words: pure functions over two views, so the feed only
/// samples and fans out, and tests call these without a cluster.
/// </summary>
public static class LiveChanges
{
    /// <summary>Membership and drain changes; with no earlier sample every member is reported once as <c>member</c>.</summary>
    public static List<LiveChange> Nodes(NodesView? before, NodesView after, DateTimeOffset at)
    {
        var changes = new List<LiveChange>();
        var known = before?.Nodes.ToDictionary(n => n.Address, StringComparer.Ordinal) ?? [];
        foreach (var n in after.Nodes)
        {
            if (!known.TryGetValue(n.Address, out var was))
            {
                changes.Add(new(at, "member", n.Address, n.Status + (n.Reachable ? "" : " (unreachable)")));
                continue;
            }
            if (was.Status != n.Status)
            {
                changes.Add(new(at, "status", n.Address, n.Status));
            }
            if (was.Reachable != n.Reachable)
            {
                changes.Add(new(at, n.Reachable ? "reachable" : "unreachable", n.Address, n.Status));
            }
            if (was.Draining != true && n.Draining == true)
            {
                changes.Add(new(at, "draining", n.Address, $"{n.Links} links, {n.Streams} streams left"));
            }
            if (!was.ReadyToTerminate && n.ReadyToTerminate && n.Draining == true)
            {
                changes.Add(new(at, "safe-to-stop", n.Address, "drained: no link, no stream, no proxy request"));
            }
        }
        if (before is not null)
        {
            var present = after.Nodes.Select(n => n.Address).ToHashSet(StringComparer.Ordinal);
            changes.AddRange(before.Nodes.Where(n => !present.Contains(n.Address)).Select(n => new LiveChange(at, "removed", n.Address, "Removed")));
        }
        return changes;
    }

    /// <summary>
    /// Sessions that appeared, changed state, moved links, or went away, within the sampled page. A session past the
    /// end of a page (after <see cref="SessionsView.Next"/>) is not reported as gone: it was simply not sampled.
    /// </summary>
    public static List<LiveChange> Sessions(SessionsView? before, SessionsView after, DateTimeOffset at)
    {
        var changes = new List<LiveChange>();
        if (before is null)
        {
            return changes;
        }
        var known = before.Sessions.ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (var s in after.Sessions)
        {
            if (!known.TryGetValue(s.Name, out var was))
            {
                changes.Add(new(at, "session", s.Name, $"{s.State}; {Links(s)}"));
                continue;
            }
            if (was.State != s.State)
            {
                changes.Add(new(at, "session-state", s.Name, s.State));
            }
            if (Links(was) != Links(s))
            {
                changes.Add(new(at, "session-links", s.Name, Links(s)));
            }
        }
        var present = after.Sessions.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var last = after.Next is null ? null : after.Sessions.LastOrDefault()?.Name;
        changes.AddRange(before.Sessions
            .Where(s => !present.Contains(s.Name) && (last is null || string.CompareOrdinal(s.Name, last) < 0))
            .Select(s => new LiveChange(at, "session-gone", s.Name, "no entity and no link any more")));
        return changes;
    }

    private static string Links(SessionView s) => s.Links.Count == 0
        ? "no links"
        : string.Join(", ", s.Links.GroupBy(l => l.Node, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Count()} link{(g.Count() == 1 ? "" : "s")} on {g.Key}"));
}
