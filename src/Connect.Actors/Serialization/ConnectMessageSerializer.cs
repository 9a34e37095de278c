using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Akka.Actor;
using Akka.Serialization;
using Connect.Actors.Protocol;

namespace Connect.Actors.Serialization;

/// <summary>
/// The explicit serializer for every <see cref="IConnectMessage"/>: System.Text.Json with a short, stable manifest
/// per type (so renaming a CLR type does not break a rolling deploy) and actor references written as their
/// serialized paths. Messages are small control records; bulk bytes never travel through remoting.
/// </summary>
/// <remarks>
/// A rolling upgrade runs two releases in one cluster, so each must read the other's messages. The rules
/// (docs/OPERATIONS.md, "Upgrading: the message rules"):
/// <list type="bullet">
/// <item>Changes are additive only: a new message gets a new manifest, a new field goes last with a default
/// (an old node ignores it; a new node reading an old message gets the default). Never rename or remove a
/// manifest or a field, never change a field's type.</item>
/// <item>A field missing from the JSON (or null where the type says it is never null) reads as its empty value
/// (<see cref="TolerantReading"/>), so a message from an older node never carries a null into an actor.</item>
/// <item>An enum value this release does not know reads as the enum's safe value (<see cref="TolerantReading.EnumFallbacks"/>)
/// instead of failing the whole message.</item>
/// </list>
/// The compatibility tests feed every earlier release's messages (tests/.../Serialization/Compat) to this one.
/// </remarks>
public sealed class ConnectMessageSerializer : SerializerWithStringManifest
{
    public const int SerializerId = 7701;

    /// <summary>Manifest of every message type. Add a line for each new cross-node message; never reuse or change a manifest.</summary>
    private static readonly FrozenDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        ["attach"] = typeof(AttachLink),
        ["detach"] = typeof(DetachLink),
        ["load"] = typeof(ReportLinkLoad),
        ["open"] = typeof(OpenStream),
        ["move"] = typeof(MoveSessionLinks),
        ["get-session"] = typeof(GetSession),
        ["attached"] = typeof(LinkAttached),
        ["unknown-link"] = typeof(LinkUnknown),
        ["granted"] = typeof(StreamGranted),
        ["refused"] = typeof(StreamRefused),
        ["session"] = typeof(SessionSnapshot),
        ["goaway-link"] = typeof(GoAwayLink),
        ["get-node-info"] = typeof(GetNodeInfo),
        ["node-info"] = typeof(NodeInfo),
        ["drain-node"] = typeof(DrainNode),
        ["drain-started"] = typeof(DrainStarted),
        ["leave-node"] = typeof(LeaveNode),
        ["leave-started"] = typeof(LeaveStarted),
        ["get-node-summary"] = typeof(GetNodeSummary),
        ["node-summary"] = typeof(NodeSummary),
        ["get-node-sessions"] = typeof(GetNodeSessions),
        ["node-sessions"] = typeof(NodeSessionsPage),
        ["get-node-session"] = typeof(GetNodeSession),
        ["node-session"] = typeof(NodeSession),
        ["link-refused"] = typeof(LinkRefused),
        ["get-node-requests"] = typeof(GetNodeRequests),
        ["node-requests"] = typeof(NodeRequests),
        ["find-session-links"] = typeof(FindSessionLinks),
        ["session-links-found"] = typeof(SessionLinksFound),
    }.ToFrozenDictionary();

    private static readonly FrozenDictionary<Type, string> Manifests = Types.ToFrozenDictionary(p => p.Value, p => p.Key);

    /// <summary>The manifests in counting order (<see cref="Counts"/> has one slot each).</summary>
    private static readonly string[] ManifestOrder = [.. Types.Keys.Order(StringComparer.Ordinal)];

    private static readonly FrozenDictionary<Type, int> SlotByType = ManifestOrder.Select((m, i) => (Type: Types[m], Slot: i)).ToFrozenDictionary(p => p.Type, p => p.Slot);

    private static readonly FrozenDictionary<string, int> SlotByManifest = ManifestOrder.Select((m, i) => (Manifest: m, Slot: i)).ToFrozenDictionary(p => p.Manifest, p => p.Slot);

    private readonly JsonSerializerOptions _json;

    public ConnectMessageSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _json = new JsonSerializerOptions(JsonSerializerDefaults.General)
        {
            Converters = { new ActorRefConverter(system), new TolerantReading.EnumConverterFactory() },
            // A newer node's extra fields are skipped (the default, stated because the upgrade rules depend on it).
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
            TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { TolerantReading.FillMissingFields } },
        };
    }

    public override int Identifier => SerializerId;

    /// <summary>
    /// This node's remote traffic of Connect messages by manifest. Akka.Remote calls <see cref="ToBinary"/> once for every
    /// message sent to another node and <see cref="FromBinary"/> once for every one received; a local send is never
    /// serialized (<c>akka.actor.serialize-messages</c> is off), so these count remoting only.
    /// </summary>
    public RemoteMessageCounts Counts { get; } = new(ManifestOrder);

    /// <summary>The instance <paramref name="system"/> uses for Connect's messages, or null when none is bound.</summary>
    public static ConnectMessageSerializer? Of(ActorSystem system) =>
        system.Serialization.FindSerializerForType(typeof(OpenStream)) as ConnectMessageSerializer;

    /// <summary>All message types this serializer is bound to (for the binding and the round-trip tests).</summary>
    public static IReadOnlyCollection<Type> MessageTypes => Types.Values;

    public override string Manifest(object o) =>
        Manifests.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType()} has no manifest in {nameof(ConnectMessageSerializer)}; add one");

    public override byte[] ToBinary(object obj)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _json);
        Counts.CountSent(SlotByType.TryGetValue(obj.GetType(), out var slot) ? slot : Counts.UnknownSlot, bytes.Length);
        return bytes;
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var known = SlotByManifest.TryGetValue(manifest, out var slot);
        Counts.CountReceived(known ? slot : Counts.UnknownSlot, bytes.Length);
        return known
            ? JsonSerializer.Deserialize(bytes, Types[manifest], _json) ?? throw new System.Runtime.Serialization.SerializationException($"empty payload for '{manifest}'")
            : throw new System.Runtime.Serialization.SerializationException($"unknown manifest '{manifest}' (a newer node's message?)");
    }

    private sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override bool CanConvert(Type typeToConvert) => typeof(IActorRef).IsAssignableFrom(typeToConvert);

        public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var path = reader.GetString();
            return string.IsNullOrEmpty(path) ? ActorRefs.Nobody : system.Provider.ResolveActorRef(path);
        }

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.IsNobody() ? string.Empty : Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}
