using Connect.Admin.Contracts;
using Connect.Host.Admin.Live;

namespace Connect.Admin.Tests;

/// <summary>The live feed's per-client bounds and its change detection, without a cluster.</summary>
public sealed class LiveSubscriberTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 2, 3, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_client_that_does_not_read_keeps_only_the_newest_snapshot_and_a_bounded_queue_of_changes()
    {
        var subscriber = new LiveSubscriber(session: null);
        for (var i = 0; i < 10_000; i++)
        {
            subscriber.Publish(new LiveEvent(LiveEventTypes.Change, $"{{\"n\":{i}}}"));
            subscriber.Publish(new LiveEvent(LiveEventTypes.Snapshot, $"{{\"s\":{i}}}"));
        }
        var taken = await subscriber.TakeAsync(TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Equal(new LiveEvent(LiveEventTypes.Dropped, $"{{\"count\":{10_000 - LiveSubscriber.MaxQueuedChanges}}}"), taken[0]);
        var changes = taken.Where(e => e.Type == LiveEventTypes.Change).ToList();
        Assert.Equal(LiveSubscriber.MaxQueuedChanges, changes.Count);
        Assert.Equal($"{{\"n\":{10_000 - LiveSubscriber.MaxQueuedChanges}}}", changes[0].Data); // the oldest went first
        Assert.Equal("{\"n\":9999}", changes[^1].Data);
        Assert.Equal(new LiveEvent(LiveEventTypes.Snapshot, "{\"s\":9999}"), Assert.Single(taken, e => e.Type == LiveEventTypes.Snapshot));
        Assert.Equal(10_000 - LiveSubscriber.MaxQueuedChanges, subscriber.DroppedTotal);

        // Everything was taken: the next take waits, then reports nothing (the endpoint sends a keep-alive).
        Assert.Empty(await subscriber.TakeAsync(TimeSpan.FromMilliseconds(50), CancellationToken.None));
    }

    [Fact]
    public void Node_changes_name_joins_status_reachability_drain_safe_to_stop_and_removal()
    {
        NodeView Node(string address, string status = "Up", bool reachable = true, bool? draining = false, bool ready = false) =>
            new(address, false, false, [], status, reachable, 1, 0, 1, 1, 1, draining, 0, ready, null);
        var before = new NodesView("a", "a", [Node("a"), Node("b"), Node("c"), Node("gone")]);
        var after = new NodesView("a", "a", [Node("a", draining: true), Node("b", reachable: false), Node("c", "Leaving"), Node("new", "Joining")]);

        var changes = LiveChanges.Nodes(before, after, T0).Select(c => (c.Kind, c.Subject)).ToList();

        Assert.Equal([("draining", "a"), ("unreachable", "b"), ("status", "c"), ("member", "new"), ("removed", "gone")], changes);
        var drained = new NodesView("a", "a", [Node("a", draining: true, ready: true)]);
        Assert.Contains(LiveChanges.Nodes(after, drained, T0), c => c.Kind == "safe-to-stop" && c.Subject == "a");
        Assert.Equal(["a", "b"], LiveChanges.Nodes(null, new NodesView("a", "a", [Node("a"), Node("b")]), T0).Where(c => c.Kind == "member").Select(c => c.Subject));
    }

    [Fact]
    public void Session_changes_stay_within_the_sampled_page()
    {
        SessionView Session(string name, string state = "idle", params string[] linkNodes) =>
            new(name, "n1", state, linkNodes.Select((n, i) => new SessionLinkView($"{name}.{i}", n, T0, 0, 0, 0, 0, false)).ToList(), 0, 0, 0, 0);
        var before = new SessionsView([Session("a", "idle", "n1"), Session("b", "idle", "n1"), Session("m", "idle", "n1"), Session("z", "idle", "n1")], []);
        // The new page ends at "m" (more after it): "z" was not sampled, so it is not reported gone; "b" is.
        var after = new SessionsView([Session("a", "busy", "n1"), Session("c", "idle", "n2"), Session("m", "idle", "n2")], [], Next: "m");

        var changes = LiveChanges.Sessions(before, after, T0).Select(c => (c.Kind, c.Subject, c.Detail)).ToList();

        Assert.Equal(
            [("session-state", "a", "busy"), ("session", "c", "idle; 1 link on n2"), ("session-links", "m", "1 link on n2"), ("session-gone", "b", "no entity and no link any more")],
            changes);
        Assert.Empty(LiveChanges.Sessions(null, after, T0));
    }
}
