using System.Buffers.Binary;
using System.Text;

namespace Connect.Tunnel.Frames;

/// <summary>
/// Encodes and decodes connect.v1 frames: <c>[type u8][stream id u32][length u32][payload]</c>, big-endian.
/// The decoder validates everything a frame can say on its own (type, size, stream id rules, payload shape);
/// rules that need stream state (unknown stream, data after FIN, window overflow) belong to the multiplexer.
/// </summary>
public static class FrameCodec
{
    public const int MaxServersLength = 4096;

    /// <summary>Decodes one frame from the start of <paramref name="input"/>.</summary>
    public static DecodeStatus TryDecode(ReadOnlyMemory<byte> input, int maxPayload, out Frame frame, out int consumed, out FrameViolation? violation)
    {
        frame = default;
        consumed = 0;
        violation = null;
        var span = input.Span;
        if (span.Length < ProtocolLimits.HeaderSize)
        {
            // A partial header can already be judged by its type byte.
            if (span.Length > 0 && !Enum.IsDefined((FrameType)span[0]))
            {
                violation = new FrameViolation(CloseCodes.ProtocolError, $"unknown frame type 0x{span[0]:x2}");
                return DecodeStatus.Violation;
            }
            return DecodeStatus.NeedMore;
        }

        var type = (FrameType)span[0];
        var streamId = BinaryPrimitives.ReadUInt32BigEndian(span[1..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(span[5..]);
        if (!Enum.IsDefined(type))
        {
            violation = new FrameViolation(CloseCodes.ProtocolError, $"unknown frame type 0x{span[0]:x2}");
            return DecodeStatus.Violation;
        }
        if (length > (uint)maxPayload)
        {
            violation = new FrameViolation(CloseCodes.MessageTooBig, $"{type} frame payload of {length} bytes exceeds the limit of {maxPayload}");
            return DecodeStatus.Violation;
        }
        if (span.Length < ProtocolLimits.HeaderSize + (int)length)
        {
            return DecodeStatus.NeedMore;
        }

        var payload = input.Slice(ProtocolLimits.HeaderSize, (int)length);
        var problem = Validate(type, streamId, payload.Span);
        if (problem is not null)
        {
            violation = new FrameViolation(CloseCodes.ProtocolError, problem);
            return DecodeStatus.Violation;
        }

        frame = new Frame(type, streamId, payload);
        consumed = ProtocolLimits.HeaderSize + (int)length;
        return DecodeStatus.Frame;
    }

    private static string? Validate(FrameType type, uint streamId, ReadOnlySpan<byte> payload)
    {
        var linkFrame = type is FrameType.Ping or FrameType.Pong or FrameType.GoAway;
        if (linkFrame && streamId != 0)
        {
            return $"{type} must use stream id 0, got {streamId}";
        }
        if (!linkFrame && streamId == 0)
        {
            return $"{type} must name a stream, got stream id 0";
        }

        switch (type)
        {
            case FrameType.Open:
                if (payload.Length == 0 || payload.Length > ProtocolLimits.MaxTargetLength)
                {
                    return $"OPEN target must be 1..{ProtocolLimits.MaxTargetLength} bytes, got {payload.Length}";
                }
                if (!IsValidUtf8(payload))
                {
                    return "OPEN target is not valid UTF-8";
                }
                return null;
            case FrameType.OpenOk:
            case FrameType.Fin:
                return payload.Length == 0 ? null : $"{type} carries no payload, got {payload.Length} bytes";
            case FrameType.OpenErr:
            case FrameType.Rst:
                if (payload.Length < 1 || payload.Length > 1 + ProtocolLimits.MaxReasonLength)
                {
                    return $"{type} payload must be a code and a reason of at most {ProtocolLimits.MaxReasonLength} bytes, got {payload.Length} bytes";
                }
                return IsValidUtf8(payload[1..]) ? null : $"{type} reason is not valid UTF-8";
            case FrameType.Data:
                return payload.Length > 0 ? null : "DATA frame with an empty payload";
            case FrameType.Window:
                if (payload.Length != 4)
                {
                    return $"WINDOW payload must be 4 bytes, got {payload.Length}";
                }
                var increment = BinaryPrimitives.ReadUInt32BigEndian(payload);
                return increment is 0 or > int.MaxValue ? $"WINDOW increment {increment} is outside 1..{int.MaxValue}" : null;
            case FrameType.Ping:
            case FrameType.Pong:
                return payload.Length == ProtocolLimits.PingPayloadSize ? null : $"{type} payload must be {ProtocolLimits.PingPayloadSize} bytes, got {payload.Length}";
            case FrameType.GoAway:
                return ValidateGoAway(payload);
            default:
                return $"unknown frame type 0x{(byte)type:x2}";
        }
    }

    private static string? ValidateGoAway(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 3)
        {
            return $"GOAWAY payload must hold a code and a reason length, got {payload.Length} bytes";
        }
        var reasonLength = BinaryPrimitives.ReadUInt16BigEndian(payload[1..]);
        if (reasonLength > ProtocolLimits.MaxReasonLength || 3 + reasonLength > payload.Length)
        {
            return $"GOAWAY reason length {reasonLength} does not fit the payload of {payload.Length} bytes";
        }
        var servers = payload[(3 + reasonLength)..];
        if (servers.Length > MaxServersLength)
        {
            return $"GOAWAY server list of {servers.Length} bytes exceeds {MaxServersLength}";
        }
        return IsValidUtf8(payload.Slice(3, reasonLength)) && IsValidUtf8(servers) ? null : "GOAWAY text is not valid UTF-8";
    }

    private static bool IsValidUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    /// <summary>Writes a frame header into the first <see cref="ProtocolLimits.HeaderSize"/> bytes of <paramref name="destination"/>.</summary>
    public static void WriteHeader(Span<byte> destination, FrameType type, uint streamId, int payloadLength)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], streamId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)payloadLength);
    }

    /// <summary>Writes a whole frame and returns its length; the destination must be large enough.</summary>
    public static int Write(Span<byte> destination, FrameType type, uint streamId, ReadOnlySpan<byte> payload)
    {
        WriteHeader(destination, type, streamId, payload.Length);
        payload.CopyTo(destination[ProtocolLimits.HeaderSize..]);
        return ProtocolLimits.HeaderSize + payload.Length;
    }

    public static byte[] Encode(FrameType type, uint streamId, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[ProtocolLimits.HeaderSize + payload.Length];
        Write(bytes, type, streamId, payload);
        return bytes;
    }

    public static byte[] EncodeOpen(uint streamId, string target) => Encode(FrameType.Open, streamId, Encoding.UTF8.GetBytes(target));

    public static byte[] EncodeCodeAndReason(FrameType type, uint streamId, byte code, string reason)
    {
        var reasonBytes = Truncate(reason, ProtocolLimits.MaxReasonLength);
        var payload = new byte[1 + reasonBytes.Length];
        payload[0] = code;
        reasonBytes.CopyTo(payload, 1);
        return Encode(type, streamId, payload);
    }

    public static byte[] EncodeWindow(uint streamId, uint increment)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, increment);
        return Encode(FrameType.Window, streamId, payload);
    }

    public static byte[] EncodePing(FrameType type, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(payload, value);
        return Encode(type, 0, payload);
    }

    public static byte[] EncodeGoAway(GoAwayCode code, string reason, IReadOnlyList<string> servers)
    {
        var reasonBytes = Truncate(reason, ProtocolLimits.MaxReasonLength);
        var serverBytes = Truncate(string.Join('\n', servers), MaxServersLength);
        var payload = new byte[3 + reasonBytes.Length + serverBytes.Length];
        payload[0] = (byte)code;
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(1), (ushort)reasonBytes.Length);
        reasonBytes.CopyTo(payload, 3);
        serverBytes.CopyTo(payload, 3 + reasonBytes.Length);
        return Encode(FrameType.GoAway, 0, payload);
    }

    public static (byte Code, string Reason) ReadCodeAndReason(ReadOnlySpan<byte> payload) =>
        (payload[0], Encoding.UTF8.GetString(payload[1..]));

    public static uint ReadWindowIncrement(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt32BigEndian(payload);

    public static ulong ReadPing(ReadOnlySpan<byte> payload) => BinaryPrimitives.ReadUInt64BigEndian(payload);

    public static string ReadTarget(ReadOnlySpan<byte> payload) => Encoding.UTF8.GetString(payload);

    public static GoAwayInfo ReadGoAway(ReadOnlySpan<byte> payload)
    {
        var reasonLength = BinaryPrimitives.ReadUInt16BigEndian(payload[1..]);
        var reason = Encoding.UTF8.GetString(payload.Slice(3, reasonLength));
        var servers = Encoding.UTF8.GetString(payload[(3 + reasonLength)..])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new GoAwayInfo((GoAwayCode)payload[0], reason, servers);
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>, cut at a character boundary so they fit <paramref name="maxBytes"/>.</summary>
    private static byte[] Truncate(string text, int maxBytes)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length <= maxBytes)
        {
            return bytes;
        }
        var cut = maxBytes;
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--;
        }
        return bytes[..cut];
    }
}

/// <summary>The content of a GOAWAY frame.</summary>
public sealed record GoAwayInfo(GoAwayCode Code, string Reason, IReadOnlyList<string> SuggestedServers);
