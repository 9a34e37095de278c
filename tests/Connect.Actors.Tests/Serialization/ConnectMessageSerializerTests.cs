using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Actors.Serialization;
using Connect.Testing.Actors;
using Connect.Tunnel.Frames;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Serialization;

/// <summary>
/// Every cross-node message goes through the serializer Akka picks for it (bound on <see cref="IConnectMessage"/>
/// as the host binds it) and comes back equal, actor references included. A message type without a sample
/// in <see cref="MessageSamples"/> fails, so a new message cannot ship without its round trip.
/// </summary>
public sealed class ConnectMessageSerializerTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));

    public static TheoryData<string> MessageTypeNames => new(ConnectMessageSerializer.MessageTypes.Select(t => t.Name).Order());

    private object? Sample(Type type) => MessageSamples.For(type, CreateTestProbe("link").Ref);

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
        var message = Sample(type) ?? throw new Xunit.Sdk.XunitException($"{type.Name} has no sample in {nameof(MessageSamples)}.{nameof(MessageSamples.For)}: add one so its round trip is tested");
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
    internal static void AssertDeepEqual(object? expected, object? actual, string path)
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
