using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Serialization;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Routing.Links;

namespace Connect.Host.Metrics;

/// <summary>
/// The node's gauges on the "Connect.Node" meter: what the node holds right now (links, streams, sessions,
/// bytes on held links), its drain, and cluster membership as this node sees it. Observed at collection time
/// (a /metrics scrape, dotnet-counters), so nothing is counted twice and nothing runs between scrapes.
/// </summary>
public sealed class NodeMetrics : IDisposable
{
    public const string MeterName = "Connect.Node";

    private readonly Meter _meter;
    private RemoteMessageCounts? _remoteCounts;

    public NodeMetrics(IMeterFactory factory, LinkRegistry links, NodeLifecycle lifecycle, IServiceProvider services)
    {
        _meter = factory.Create(MeterName);
        _meter.CreateObservableGauge("connect.node.links", () => links.Count, "{link}", "Tunnel links whose socket terminates on this node.");
        _meter.CreateObservableGauge("connect.node.streams", () => links.ActiveStreams, "{stream}", "Streams open on this node's links.");
        _meter.CreateObservableGauge("connect.node.sessions", () => links.All.Select(l => l.SessionId).Distinct().Count(), "{session}", "Sessions with at least one link on this node.");
        _meter.CreateObservableGauge("connect.node.links.going_away", () => links.All.Count(l => l.Mux.IsGoingAway), "{link}", "Links on this node that were sent or sent GOAWAY and wait for their last stream.");
        _meter.CreateObservableCounter("connect.node.link.streams_opened", () => links.All.Sum(l => l.Mux.StreamsOpened), "{stream}", "Streams opened on the links currently held (drops when a link closes).");
        _meter.CreateObservableGauge("connect.node.link.bytes", () => new[]
        {
            new Measurement<long>(links.All.Sum(l => l.Mux.BytesIn), new KeyValuePair<string, object?>("direction", "in")),
            new Measurement<long>(links.All.Sum(l => l.Mux.BytesOut), new KeyValuePair<string, object?>("direction", "out")),
        }, "By", "Bytes carried by the links currently held, from (in) and to (out) the agents.");
        // Keep-alive frames of the links held (what an idle node spends its CPU on; docs/SCALING.md "Idle CPU: the profile").
        _meter.CreateObservableCounter("connect.node.link.pings", () => new[]
        {
            new Measurement<long>(links.All.Sum(l => l.Mux.Pings.Sent), new KeyValuePair<string, object?>("kind", "sent")),
            new Measurement<long>(links.All.Sum(l => l.Mux.Pings.Skipped), new KeyValuePair<string, object?>("kind", "skipped")),
            new Measurement<long>(links.All.Sum(l => l.Mux.PeerPings), new KeyValuePair<string, object?>("kind", "answered")),
        }, "{ping}", "PINGs this node sent on the links held, skipped because the agent pings, and the agents' PINGs it answered with PONG (drops when a link closes).");
        _meter.CreateObservableGauge("connect.node.draining", () => lifecycle.IsDraining ? 1 : 0, "{state}", "1 while this node drains (readiness is 503).");
        _meter.CreateObservableCounter("connect.node.drain.streams_reset", () => lifecycle.StreamsResetAtDeadline, "{stream}", "Streams reset because they outlived the drain deadline.");
        // The actor system starts after the services are built; until then the cluster gauges report nothing.
        _meter.CreateObservableGauge("connect.cluster.members", () => Members(services), "{member}", "Cluster members by status, as this node sees them.");
        _meter.CreateObservableGauge("connect.cluster.unreachable", () => Unreachable(services), "{member}", "Members this node's failure detector marks unreachable.");
        // Counted by the serializer Akka.Remote calls for each of Connect's messages that crosses a node boundary (a
        // local send is never serialized); Akka's own heartbeats, gossip and sharding messages are not in it.
        _meter.CreateObservableCounter("connect.remote.messages", () => RemoteTotals(services, t => (t.Sent, t.Received)), "{message}",
            "Connect's control messages sent to (out) and received from (in) other nodes over Akka.Remote, by message type; Akka's own cluster and sharding messages are not counted.");
        _meter.CreateObservableCounter("connect.remote.message.bytes", () => RemoteTotals(services, t => (t.SentBytes, t.ReceivedBytes)), "By",
            "Serialized payload bytes of those messages (without Akka.Remote's envelope), by direction and message type.");
    }

    /// <summary>One measurement per direction and message type that has been seen at least once either way (so a scrape lists what this node uses, not every manifest).</summary>
    private IEnumerable<Measurement<long>> RemoteTotals(IServiceProvider services, Func<RemoteMessageTotals, (long Out, long In)> pick)
    {
        var counts = _remoteCounts ??= RemoteCountsOf(services);
        if (counts is null)
        {
            yield break;
        }
        foreach (var totals in counts.Totals())
        {
            if (totals.Sent == 0 && totals.Received == 0)
            {
                continue;
            }
            var (sent, received) = pick(totals);
            var type = new KeyValuePair<string, object?>("type", totals.Type);
            yield return new Measurement<long>(sent, new KeyValuePair<string, object?>("direction", "out"), type);
            yield return new Measurement<long>(received, new KeyValuePair<string, object?>("direction", "in"), type);
        }
    }

    private static RemoteMessageCounts? RemoteCountsOf(IServiceProvider services)
    {
        try
        {
            return ConnectMessageSerializer.Of(services.GetRequiredService<ActorSystem>())?.Counts;
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or ObjectDisposedException)
        {
            return null;
        }
    }

    private static Cluster? ClusterOf(IServiceProvider services)
    {
        try
        {
            return Cluster.Get(services.GetRequiredService<ActorSystem>());
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or ObjectDisposedException)
        {
            return null;
        }
    }

    private static IEnumerable<Measurement<int>> Unreachable(IServiceProvider services) =>
        ClusterOf(services) is { } cluster ? [new Measurement<int>(cluster.State.Unreachable.Count)] : [];

    private static IEnumerable<Measurement<int>> Members(IServiceProvider services)
    {
        if (ClusterOf(services) is not { } cluster)
        {
            return [];
        }
        var members = cluster.State.Members;
        return Enum.GetValues<MemberStatus>().Select(status =>
            new Measurement<int>(members.Count(m => m.Status == status), new KeyValuePair<string, object?>("status", status.ToString().ToLowerInvariant())));
    }

    public void Dispose() => _meter.Dispose();
}
