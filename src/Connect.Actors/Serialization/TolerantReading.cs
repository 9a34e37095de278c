using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Tunnel.Frames;

namespace Connect.Actors.Serialization;

/// <summary>
/// How <see cref="ConnectMessageSerializer"/> reads a message written by another release: unknown enum values
/// map to a safe known value, missing or null fields become empty values. Without this an old node drops a
/// message carrying a new enum value, and a field missing from an older node's message arrives as null and
/// throws inside the actor that reads it (restarting a session entity and losing its waiting requests).
/// </summary>
public static class TolerantReading
{
    /// <summary>
    /// The value an unknown enum value reads as, for every enum a message carries; each is the choice that keeps the
    /// receiver safe: an unknown GOAWAY reason still moves the link, an unknown refusal is a refusal,
    /// an unknown activity is shown as busy (never idle, so nobody treats the session as safe to cut).
    /// </summary>
    public static readonly FrozenDictionary<Type, object> EnumFallbacks = new Dictionary<Type, object>
    {
        [typeof(GoAwayCode)] = GoAwayCode.Draining,
        [typeof(StreamRefusal)] = StreamRefusal.NoTunnel,
        [typeof(SessionActivity)] = SessionActivity.Busy,
    }.ToFrozenDictionary();

    private static readonly NullabilityInfoContext Nullability = new();
    private static readonly ConcurrentDictionary<Type, (PropertyInfo Property, Func<object> Empty)[]> NonNullProperties = new();

    /// <summary>A type-info modifier: after a message record (or a record inside one) is read, fills its missing non-nullable fields.</summary>
    public static void FillMissingFields(JsonTypeInfo typeInfo)
    {
        if (typeInfo.Kind != JsonTypeInfoKind.Object || typeInfo.Type.Namespace != typeof(IConnectMessage).Namespace)
        {
            return;
        }
        var properties = NonNullProperties.GetOrAdd(typeInfo.Type, FindNonNullProperties);
        if (properties.Length == 0)
        {
            return;
        }
        typeInfo.OnDeserialized = value =>
        {
            foreach (var (property, empty) in properties)
            {
                if (property.GetValue(value) is null)
                {
                    property.SetValue(value, empty());
                }
            }
        };
    }

    /// <summary>Properties declared non-nullable whose type has an empty value, and that can be set (a record's init accessor).</summary>
    private static (PropertyInfo, Func<object>)[] FindNonNullProperties(Type type)
    {
        // NullabilityInfoContext is not thread-safe; this runs once per type.
        lock (Nullability)
        {
            return FindNonNullPropertiesLocked(type);
        }
    }

    private static (PropertyInfo, Func<object>)[] FindNonNullPropertiesLocked(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => !p.PropertyType.IsValueType && p.SetMethod is not null && p.GetIndexParameters().Length == 0)
            .Where(p => Nullability.Create(p).ReadState == NullabilityState.NotNull)
            .Select(p => (Property: p, Empty: EmptyValueFor(p.PropertyType)))
            .Where(p => p.Empty is not null)
            .Select(p => (p.Property, p.Empty!))
            .ToArray();

    /// <summary>The empty value of a field's type: "", an empty immutable collection, Nobody, or the type's own <c>Empty</c>/<c>Idle</c>/<c>Instance</c>.</summary>
    internal static Func<object>? EmptyValueFor(Type type)
    {
        if (type == typeof(string))
        {
            return () => string.Empty;
        }
        if (typeof(IActorRef).IsAssignableFrom(type))
        {
            return () => ActorRefs.Nobody;
        }
        // ImmutableList<T>.Empty, ImmutableHashSet<T>.Empty, LinkLoad.Idle, GetNodeInfo.Instance...
        var field = type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .FirstOrDefault(f => f.IsInitOnly && f.FieldType == type && f.Name is "Empty" or "Idle" or "Instance");
        if (field?.GetValue(null) is { } empty)
        {
            return () => empty;
        }
        return null;
    }

    /// <summary>Writes enums by name (as before); reads a name or number it does not know as the enum's fallback.</summary>
    public sealed class EnumConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(EnumConverter<>).MakeGenericType(typeToConvert))!;
    }

    private sealed class EnumConverter<T> : JsonConverter<T>
        where T : struct, Enum
    {
        private static readonly T Fallback = EnumFallbacks.TryGetValue(typeof(T), out var fallback) ? (T)fallback : Enum.GetValues<T>()[0];

        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    var name = reader.GetString();
                    // Names only: Enum.TryParse would also accept "7" or "1,2", which no release writes.
                    return name is not null && !char.IsAsciiDigit(name.FirstOrDefault()) && name[0] != '-' && !name.Contains(',') && Enum.TryParse<T>(name, out var named) && Enum.IsDefined(named) ? named : Fallback;
                case JsonTokenType.Number when reader.TryGetInt64(out var number):
                    var value = (T)Enum.ToObject(typeof(T), number);
                    return Enum.IsDefined(value) ? value : Fallback;
                default:
                    return Fallback;
            }
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }
}
