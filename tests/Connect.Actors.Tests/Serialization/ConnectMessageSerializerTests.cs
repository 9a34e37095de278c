using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Actors.Serialization;
using Connect.Actors.Tests.Support;
using Connect.Tunnel.Frames;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Serialization;

/// <summary>
/// Every cross-node message goes through the serializer Akka picks for it (bound on <see cref="IConnectMessage"/>
/// as the host binds it) and comes back equal, actor references included. A message type without a sample
/// below fails, so a new message cannot ship without its round trip.
/// </summary>
public sealed class ConnectMessageSerializerTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));

    public static TheoryData<string> MessageTypeNames => new(ConnectMessageSerializer.MessageTypes.Select(t => t.Name).Order());

    /// <summary>A sample with every field set to something other than its default.</summary>
    private object? Sample(Type type)
    {
        var link = CreateTestProbe("link").Ref;
        var load = new LinkLoad(3, 17, 1_000_000, 2_000_000, GoingAway: true);
        return type.Name switch
        {
            nameof(AttachLink) => new AttachLink("s1", "L1", link, "akka.tcp://connect@10.0.0.1:4053", "10.0.0.1:7000", T0, load),
            nameof(DetachLink) => new DetachLink("s1", "L1", "1000 (peer): bye"),
            nameof(ReportLinkLoad) => new ReportLinkLoad("s1", "L1", load),
            nameof(OpenStream) => new OpenStream("s1", "example.com:443", "akka.tcp://connect@10.0.0.2:4053", ["L1", "L2"]),
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
            nameof(DrainStarted) => new DrainStarted("akka.tcp://connect@10.0.0.1:4053", AlreadyDraining: true, Links: 2, Streams: 5),
            nameof(GetNodeSummary) => GetNodeSummary.Instance,
            nameof(NodeSummary) => new NodeSummary("akka.tcp://connect@10.0.0.1:4053", Draining: true, 2, Links: 10_000, Streams: 12, Sessions: 9_000, Entities: 3_000, Shards: 33, "region did not answer", ProxyInFlight: 4, ReadyToTerminate: true),
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
            _ => null,
        };
    }

    /// <summary>The largest pages a node sends (longest names, most links or streams) stay well under Akka.Remote's frame limit (issue 16).</summary>
    [Fact]
    public void The_largest_admin_pages_stay_well_under_the_remoting_frame_limit()
    {
        var name = new string('s', 64);
        var target = new string('h', 253) + ":65535";
        LinkInfo Link(int i, ImmutableList<StreamInfo> streams) =>
            new($"{name}.0123456789", name, "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535", T0, 1_000, long.MaxValue, long.MaxValue, long.MaxValue, true, streams);
        // A full page: 200 sessions, or 150 links (the node stops at whichever comes first).
        var sessionsPage = new NodeSessionsPage(
            "akka.tcp://connect@[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            Enumerable.Range(0, 150).Select(i => new NodeSessionEntry(name, true, [Link(i, [])])).ToImmutableList(),
            true,
            null);
        var session = new NodeSession(
            sessionsPage.Address,
            name,
            true,
            [Link(0, Enumerable.Range(0, GetNodeSession.MaxStreams).Select(i => new StreamInfo(uint.MaxValue, target, T0, long.MaxValue, long.MaxValue)).ToImmutableList())],
            1_800,
            null);
        foreach (object message in new object[] { sessionsPage, session })
        {
            var bytes = Sys.Serialization.FindSerializerFor(message).ToBinary(message);
            Assert.True(bytes.Length < 100_000, $"{message.GetType().Name}: {bytes.Length} bytes");
        }
    }

    [Theory]
    [MemberData(nameof(MessageTypeNames))]
    public void Message_round_trips_through_the_serializer_Akka_picks(string typeName)
    {
        var type = ConnectMessageSerializer.MessageTypes.Single(t => t.Name == typeName);
        var message = Sample(type) ?? throw new Xunit.Sdk.XunitException($"{type.Name} has no sample in {nameof(ConnectMessageSerializerTests)}.{nameof(Sample)}: add one so its round trip is tested");
        Assert.IsType(type, message);

        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<ConnectMessageSerializer>(serializer);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        var copy = Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);

        Assert.IsType(type, copy);
        AssertDeepEqual(message, copy, type.Name);
        // Well under Akka.Remote's 128,000-byte frame limit.
        Assert.True(bytes.Length < 4_000, $"{type.Name} serialized to {bytes.Length} bytes");
    }

    [Fact]
    public void Every_cross_node_message_type_has_a_manifest()
    {
        var declared = typeof(IConnectMessage).Assembly.GetTypes()
            .Where(t => typeof(IConnectMessage).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .ToHashSet();

        Assert.Equal(declared.Select(t => t.Name).Order(), ConnectMessageSerializer.MessageTypes.Select(t => t.Name).Order());
    }

    [Fact]
    public void Actor_reference_resolves_back_to_the_same_actor()
    {
        var link = CreateTestProbe("link");
        var granted = new StreamGranted("s1", "L1", link.Ref, "node", "ep");
        var serializer = Sys.Serialization.FindSerializerFor(granted);

        var copy = (StreamGranted)Sys.Serialization.Deserialize(serializer.ToBinary(granted), serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, granted));

        Assert.Equal(link.Ref, copy.Link);
        copy.Link.Tell("hello");
        link.ExpectMsg("hello", Bound);
    }

    [Fact]
    public void Unknown_manifest_fails_with_a_clear_error()
    {
        var serializer = (ConnectMessageSerializer)Sys.Serialization.FindSerializerForType(typeof(IConnectMessage));

        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "from-the-future"));

        Assert.Contains("from-the-future", error.Message);
    }

    /// <summary>Structural equality: records compared property by property, collections element by element (sets as sets), actor refs by identity.</summary>
    private static void AssertDeepEqual(object? expected, object? actual, string path)
    {
        if (expected is null || actual is null)
        {
            Assert.True(expected is null && actual is null, $"{path}: expected {expected ?? "null"}, got {actual ?? "null"}");
            return;
        }
        Assert.True(expected.GetType() == actual.GetType(), $"{path}: expected a {expected.GetType().Name}, got a {actual.GetType().Name}");
        var type = expected.GetType();
        if (expected is IActorRef || type.IsPrimitive || type.IsEnum || expected is string or DateTimeOffset or DateTime or TimeSpan or decimal)
        {
            Assert.True(expected.Equals(actual), $"{path}: expected {expected}, got {actual}");
            return;
        }
        if (expected is IEnumerable expectedItems)
        {
            var e = expectedItems.Cast<object?>().ToList();
            var a = ((IEnumerable)actual).Cast<object?>().ToList();
            Assert.True(e.Count == a.Count, $"{path}: expected {e.Count} items, got {a.Count}");
            if (type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IReadOnlySet<>)))
            {
                Assert.True(e.All(a.Contains), $"{path}: sets differ: [{string.Join(", ", e)}] vs [{string.Join(", ", a)}]");
                return;
            }
            for (var i = 0; i < e.Count; i++)
            {
                AssertDeepEqual(e[i], a[i], $"{path}[{i}]");
            }
            return;
        }
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToList();
        foreach (var property in properties)
        {
            AssertDeepEqual(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
        }
    }
}
