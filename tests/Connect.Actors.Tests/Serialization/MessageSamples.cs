using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Tunnel.Frames;

namespace Connect.Actors.Tests.Serialization;

/// <summary>One sample of every cross-node message, shared by the round-trip and the compatibility tests.</summary>
internal static class MessageSamples
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));

    /// <summary>A sample with every field set to something other than its default.</summary>
    public static object? For(Type type, IActorRef link)
    {
        var load = new LinkLoad(3, 17, 1_000_000, 2_000_000, GoingAway: true);
        return type.Name switch
        {
            nameof(AttachLink) => new AttachLink("s1", "L1", link, "akka.tcp://connect@10.0.0.1:4053", "10.0.0.1:7000", T0, load, FirstAttach: true),
            nameof(LinkRefused) => new LinkRefused("s1", "L1", "session 's1' already holds 8 links, its limit"),
            nameof(DetachLink) => new DetachLink("s1", "L1", "1000 (peer): bye"),
            nameof(ReportLinkLoad) => new ReportLinkLoad("s1", "L1", load),
            nameof(OpenStream) => new OpenStream("s1", "example.com:443", "akka.tcp://connect@10.0.0.2:4053", ["L1", "L2"], "4f1c2b7a9d0e4e3f8a6b5c4d3e2f1a0b"),
            nameof(MoveSessionLinks) => new MoveSessionLinks("s1", "operator kick"),
            nameof(GetSession) => new GetSession("s1"),
            nameof(LinkAttached) => new LinkAttached("s1", "L1"),
            nameof(LinkUnknown) => new LinkUnknown("s1", "L1"),
            nameof(StreamGranted) => new StreamGranted("s1", "L1", link, "akka.tcp://connect@10.0.0.1:4053", "10.0.0.1:7000"),
            nameof(StreamRefused) => new StreamRefused("s1", StreamRefusal.TooManyStreams, "session 's1' has reached its limit"),
            nameof(SessionSnapshot) => new SessionSnapshot(
                "s1",
                "akka.tcp://connect@10.0.0.3:4053",
                SessionActivity.Draining,
                [new LinkSnapshot("L1", "akka.tcp://connect@10.0.0.1:4053", T0, load), new LinkSnapshot("L2", "akka.tcp://connect@10.0.0.2:4053", T0.AddMinutes(1), LinkLoad.Idle)],
                PendingOpens: 4,
                StreamsGranted: 123,
                StreamsRefused: 5),
            nameof(GoAwayLink) => new GoAwayLink(GoAwayCode.Kicked, "operator kick"),
            nameof(GetNodeInfo) => GetNodeInfo.Instance,
            nameof(NodeInfo) => new NodeInfo(
                "akka.tcp://connect@10.0.0.1:4053",
                Draining: true,
                StreamsResetAtDeadline: 2,
                [new LinkInfo("L1", "s1", "203.0.113.9:50000", T0, 1, 9, 100, 200, GoingAway: true, [new StreamInfo(4, "example.com:443", T0.AddSeconds(3), 10, 20)])],
                ["s1", "s2"],
                Shards: 7,
                EntitiesError: "region did not answer",
                ProxyInFlight: 3),
            nameof(DrainNode) => new DrainNode("deploy"),
            nameof(LeaveNode) => new LeaveNode("rolling deploy"),
            nameof(LeaveStarted) => new LeaveStarted("akka.tcp://connect@10.0.0.1:4053", AlreadyLeaving: true, Links: 3, Streams: 7),
            nameof(DrainStarted) => new DrainStarted("akka.tcp://connect@10.0.0.1:4053", AlreadyDraining: true, Links: 2, Streams: 5),
            nameof(GetNodeSummary) => GetNodeSummary.Instance,
            nameof(NodeSummary) => new NodeSummary("akka.tcp://connect@10.0.0.1:4053", Draining: true, 2, Links: 10_000, Streams: 12, Sessions: 9_000, Entities: 3_000, Shards: 33, "region did not answer", ProxyInFlight: 4, ReadyToTerminate: true, BytesIn: 123_456, BytesOut: 654_321),
            nameof(GetNodeSessions) => new GetNodeSessions("s1", 150),
            nameof(NodeSessionsPage) => new NodeSessionsPage(
                "akka.tcp://connect@10.0.0.1:4053",
                [new NodeSessionEntry("s1", EntityHere: true, [new LinkInfo("L1", "s1", "203.0.113.9:50000", T0, 1, 9, 100, 200, GoingAway: true, [])]), new NodeSessionEntry("s2", false, [])],
                More: true,
                "region did not answer"),
            nameof(GetNodeSession) => new GetNodeSession("s1"),
            nameof(NodeSession) => new NodeSession(
                "akka.tcp://connect@10.0.0.1:4053",
                "s1",
                EntityHere: true,
                [new LinkInfo("L1", "s1", "203.0.113.9:50000", T0, 1, 9, 100, 200, GoingAway: true, [new StreamInfo(4, "example.com:443", T0.AddSeconds(3), 10, 20)])],
                StreamsOmitted: 7,
                "region did not answer"),
            nameof(GetNodeRequests) => new GetNodeRequests("s1", 50),
            nameof(NodeRequests) => new NodeRequests(
                "akka.tcp://connect@10.0.0.1:4053",
                [new RequestRecord(T0, "s1", "akka.tcp://connect@10.0.0.1:4053", "akka.tcp://connect@10.0.0.2:4053", "CONNECT", "example.com:443", 502, 10, 20, 12.5, "UpstreamRefused", "refused by the target")]),
            nameof(FindSessionLinks) => new FindSessionLinks("s1", ["L3"]),
            nameof(SessionLinksFound) => new SessionLinksFound(
                "akka.tcp://connect@10.0.0.1:4053",
                "s1",
                [new StreamGranted("s1", "L1", link, "akka.tcp://connect@10.0.0.1:4053", "10.0.0.1:7000")]),
            _ => null,
        };
    }

}
