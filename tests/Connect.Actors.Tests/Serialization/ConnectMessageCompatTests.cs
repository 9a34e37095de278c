using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Actors.Serialization;
using Connect.Actors.Sessions;
using Connect.Testing.Actors;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Serialization;

/// <summary>
/// A rolling upgrade runs two releases in one cluster. Earlier releases' messages (kept as files under
/// Serialization/Compat/&lt;release&gt;/&lt;manifest&gt;.json) must read in this release, and this release must write
/// only what the earlier one reads: the same manifests, every old field with the same JSON shape, new fields only
/// added. Unknown enum values and missing fields read as safe values instead of failing or carrying a null.
/// </summary>
public sealed class ConnectMessageCompatTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static readonly string CompatRoot = Path.Combine(AppContext.BaseDirectory, "Serialization", "Compat");

    public static TheoryData<string, string> EarlierMessages
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var file in Directory.EnumerateFiles(CompatRoot, "*.json", SearchOption.AllDirectories).Order())
            {
                data.Add(Path.GetFileName(Path.GetDirectoryName(file))!, Path.GetFileNameWithoutExtension(file));
            }
            return data;
        }
    }

    private ConnectMessageSerializer Serializer => (ConnectMessageSerializer)Sys.Serialization.FindSerializerForType(typeof(IConnectMessage));

    private static byte[] Earlier(string release, string manifest) => File.ReadAllBytes(Path.Combine(CompatRoot, release, manifest + ".json"));

    private object Read(string json, string manifest) => Serializer.FromBinary(Encoding.UTF8.GetBytes(json), manifest);

    [Fact]
    public void Every_manifest_of_this_release_is_kept_as_v1_test_data_or_is_new()
    {
        var v1 = Directory.EnumerateFiles(Path.Combine(CompatRoot, "v1"), "*.json").Select(Path.GetFileNameWithoutExtension).ToHashSet();

        // v1 had 16 messages; none may disappear (a renamed manifest is a message the other release cannot read).
        Assert.Equal(16, v1.Count);
        foreach (var manifest in v1)
        {
            Assert.True(ConnectMessageSerializer.MessageTypes.Any(t => ManifestOf(t) == manifest), $"manifest '{manifest}' of v1 is gone: an old node's message would fail to read");
        }
    }

    [Theory]
    [MemberData(nameof(EarlierMessages))]
    public void Message_of_an_earlier_release_reads_with_every_value_kept(string release, string manifest)
    {
        var bytes = Earlier(release, manifest);

        var message = Serializer.FromBinary(bytes, manifest);

        Assert.Equal(manifest, Serializer.Manifest(message));
        AssertNoNullWhereNeverNull(message, manifest);
        // Every value the old node sent survives: written again, the message holds each old field unchanged
        // (actor references excepted: they name a test system that no longer runs).
        var again = JsonNode.Parse(Serializer.ToBinary(message))!;
        foreach (var (path, value) in Leaves(JsonNode.Parse(bytes)!, manifest))
        {
            var now = At(again, path);
            Assert.True(now is not null, $"{path}: the field of {release} is gone");
            if (!IsActorPath(value))
            {
                Assert.True(JsonNode.DeepEquals(Canonical(value), Canonical(now)), $"{path}: {release} sent {value?.ToJsonString()}, read back as {now?.ToJsonString()}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(EarlierMessages))]
    public void This_release_writes_every_field_an_earlier_release_reads_with_the_same_shape(string release, string manifest)
    {
        var type = ConnectMessageSerializer.MessageTypes.Single(t => ManifestOf(t) == manifest);
        var sample = MessageSamples.For(type, CreateTestProbe().Ref)!;

        var written = JsonNode.Parse(Serializer.ToBinary(sample))!;

        // Additive only: every field the earlier release knows is still written, with the same JSON kind; the
        // earlier release skips the fields it does not know (System.Text.Json's default).
        foreach (var (path, value) in Leaves(JsonNode.Parse(Earlier(release, manifest))!, manifest))
        {
            var now = At(written, path);
            Assert.True(now is not null, $"{path}: this release no longer writes a field {release} reads");
            Assert.True(value?.GetValueKind() == now.GetValueKind(), $"{path}: {release} reads a {value?.GetValueKind()}, this release writes a {now.GetValueKind()}");
        }
    }

    [Fact]
    public void Unknown_enum_values_read_as_the_safe_value_instead_of_failing_the_message()
    {
        // A newer release's GOAWAY reason still moves the link.
        Assert.Equal(new GoAwayLink(GoAwayCode.Draining, "x"), Read("""{"Code":"Quarantined","Reason":"x"}""", "goaway-link"));
        Assert.Equal(new GoAwayLink(GoAwayCode.Draining, "x"), Read("""{"Code":200,"Reason":"x"}""", "goaway-link"));
        Assert.Equal(new GoAwayLink(GoAwayCode.Shutdown, "x"), Read("""{"Code":3,"Reason":"x"}""", "goaway-link"));
        // A newer refusal is still a refusal.
        var refused = Assert.IsType<StreamRefused>(Read("""{"SessionId":"s1","Reason":"RateLimited","Message":"slow down"}""", "refused"));
        Assert.Equal(StreamRefusal.NoTunnel, refused.Reason);
        Assert.Equal("slow down", refused.Message);
        // A newer activity is shown as busy, never as idle.
        Assert.Equal(SessionActivity.Busy, Assert.IsType<SessionSnapshot>(Read("""{"SessionId":"s1","State":"Hibernating","Links":[]}""", "session")).State);
    }

    [Fact]
    public void Every_enum_a_message_carries_has_a_safe_value()
    {
        var enums = ConnectMessageSerializer.MessageTypes.SelectMany(t => EnumsIn(t, [])).ToHashSet();

        Assert.NotEmpty(enums);
        foreach (var type in enums)
        {
            Assert.True(TolerantReading.EnumFallbacks.ContainsKey(type), $"{type.Name} has no entry in {nameof(TolerantReading)}.{nameof(TolerantReading.EnumFallbacks)}");
        }
    }

    [Fact]
    public void Missing_and_null_fields_read_as_empty_values_not_null()
    {
        var open = Assert.IsType<OpenStream>(Read("""{"SessionId":"s1","Target":"example.com:443"}""", "open"));
        Assert.Equal(("s1", "example.com:443", ""), (open.SessionId, open.Target, open.FromNode));
        Assert.NotNull(open.ExcludeLinks);
        Assert.Empty(open.ExcludeLinks);
        Assert.Null(open.RequestId); // declared nullable: an old node's request has no id

        var attach = Assert.IsType<AttachLink>(Read("""{"SessionId":"s1","LinkId":"L1","Link":null}""", "attach"));
        Assert.Same(ActorRefs.Nobody, attach.Link);
        Assert.Same(LinkLoad.Idle, attach.Load);
        Assert.Equal("", attach.DataEndpoint);

        var info = Assert.IsType<NodeInfo>(Read("""{"Address":"a","Links":[{"LinkId":"L1"}]}""", "node-info"));
        Assert.Empty(info.Entities);
        Assert.Null(info.EntitiesError);
        Assert.Empty(Assert.Single(info.Links).Streams);
        Assert.Equal("", info.Links[0].SessionId);
    }

    [Fact]
    public async Task Entity_grants_an_open_request_whose_fields_an_older_node_did_not_send()
    {
        // Before tolerant reading, the missing ExcludeLinks arrived as null and the entity threw picking a link.
        var shard = CreateTestProbe("shard");
        var entity = shard.ChildActorOf(SessionActor.Props("s1", new SessionSettings(), NullLoggerFactory.Instance, TimeProvider.System), "entity-s1");
        var link = CreateTestProbe("link-L1");
        link.Send(entity, new AttachLink("s1", "L1", link.Ref, "node-1", "node-1:7000", DateTimeOffset.UtcNow, LinkLoad.Idle));
        await link.ExpectMsgAsync<LinkAttached>(Bound);

        entity.Tell(Read("""{"SessionId":"s1","Target":"example.com:443","FromNode":"n"}""", "open"), TestActor);

        Assert.Equal("L1", (await ExpectMsgAsync<StreamGranted>(Bound)).LinkId);
    }

    private string ManifestOf(Type type) => Serializer.Manifest(MessageSamples.For(type, ActorRefs.Nobody)!);

    private static IEnumerable<Type> EnumsIn(Type type, HashSet<Type> seen)
    {
        if (!seen.Add(type))
        {
            yield break;
        }
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var element = propertyType.IsGenericType && typeof(IEnumerable).IsAssignableFrom(propertyType) ? propertyType.GetGenericArguments()[0] : propertyType;
            if (element.IsEnum)
            {
                yield return element;
            }
            else if (element.Namespace == typeof(IConnectMessage).Namespace)
            {
                foreach (var nested in EnumsIn(element, seen))
                {
                    yield return nested;
                }
            }
        }
    }

    /// <summary>Every leaf of a JSON document with its path (arrays by index).</summary>
    private static IEnumerable<(string Path, JsonNode? Value)> Leaves(JsonNode node, string path)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, child) in obj)
                {
                    if (child is null)
                    {
                        yield return ($"{path}.{name}", null);
                        continue;
                    }
                    foreach (var leaf in Leaves(child, $"{path}.{name}"))
                    {
                        yield return leaf;
                    }
                }
                break;
            case JsonArray array when array.All(item => item is JsonValue):
                // A list of plain values (a set, such as ExcludeLinks, has no order) is one leaf.
                yield return (path, array);
                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    foreach (var leaf in Leaves(array[i]!, $"{path}[{i}]"))
                    {
                        yield return leaf;
                    }
                }
                break;
            default:
                yield return (path, node);
                break;
        }
    }

    private static JsonNode? At(JsonNode root, string path)
    {
        var node = root;
        // path is "manifest.A.B[0].C": skip the manifest, then walk names and indexes.
        foreach (var part in path.Split('.').Skip(1))
        {
            var name = part;
            var index = -1;
            var bracket = part.IndexOf('[');
            if (bracket >= 0)
            {
                name = part[..bracket];
                index = int.Parse(part[(bracket + 1)..^1]);
            }
            node = node is JsonObject obj && obj.TryGetPropertyValue(name, out var child) ? child : null;
            if (index >= 0)
            {
                node = node is JsonArray array && index < array.Count ? array[index] : null;
            }
            if (node is null)
            {
                return null;
            }
        }
        return node;
    }

    /// <summary>Arrays of plain values in a stable order (sets are written in hash order, which differs per process).</summary>
    private static JsonNode? Canonical(JsonNode? node) =>
        node is JsonArray array ? new JsonArray(array.Select(item => item!.ToJsonString()).Order(StringComparer.Ordinal).Select(text => JsonNode.Parse(text)).ToArray()) : node;

    private static bool IsActorPath(JsonNode? value) => value is JsonValue v && v.TryGetValue<string>(out var text) && text.StartsWith("akka", StringComparison.Ordinal) && text.Contains('#');

    /// <summary>No property declared non-nullable holds null, in the message or any record inside it.</summary>
    private static void AssertNoNullWhereNeverNull(object value, string path)
    {
        var nullability = new NullabilityInfoContext();
        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0))
        {
            var current = property.GetValue(value);
            if (current is null)
            {
                Assert.True(nullability.Create(property).ReadState != NullabilityState.NotNull, $"{path}.{property.Name} is null but is declared never null");
                continue;
            }
            if (current is IEnumerable items and not string)
            {
                var i = 0;
                foreach (var item in items.Cast<object?>().Where(x => x?.GetType().Namespace == typeof(IConnectMessage).Namespace))
                {
                    AssertNoNullWhereNeverNull(item!, $"{path}.{property.Name}[{i++}]");
                }
            }
            else if (current.GetType().Namespace == typeof(IConnectMessage).Namespace && !current.GetType().IsEnum)
            {
                AssertNoNullWhereNeverNull(current, $"{path}.{property.Name}");
            }
        }
    }
}
