using System.Buffers.Binary;
using System.Text;
using Connect.Tunnel.Frames;

namespace Connect.Tunnel.Tests;

public class FrameCodecTests
{
    private static Frame DecodeOne(byte[] bytes)
    {
        var status = FrameCodec.TryDecode(bytes, ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
        Assert.True(status == DecodeStatus.Frame, $"expected a frame, got {status}: {violation}");
        Assert.Equal(bytes.Length, consumed);
        return frame;
    }

    /// <summary>A frame header with any type byte, id and length field, followed by <paramref name="payload"/>.</summary>
    internal static byte[] Raw(byte type, uint streamId, byte[] payload, uint? lengthField = null)
    {
        var bytes = new byte[ProtocolLimits.HeaderSize + payload.Length];
        bytes[0] = type;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), streamId);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(5), lengthField ?? (uint)payload.Length);
        payload.CopyTo(bytes, ProtocolLimits.HeaderSize);
        return bytes;
    }

    private static byte[] Raw(FrameType type, uint streamId, byte[] payload) => Raw((byte)type, streamId, payload);

    [Fact]
    public void Header_is_type_then_big_endian_stream_id_then_big_endian_length()
    {
        var bytes = FrameCodec.Encode(FrameType.Data, 0x01020304, new byte[] { 0xAA, 0xBB });
        Assert.Equal(new byte[] { 0x04, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x02, 0xAA, 0xBB }, bytes);
    }

    [Fact]
    public void Open_round_trips_its_target()
    {
        var frame = DecodeOne(FrameCodec.EncodeOpen(7, "db.internal.example:5432"));
        Assert.Equal(FrameType.Open, frame.Type);
        Assert.Equal(7u, frame.StreamId);
        Assert.Equal("db.internal.example:5432", FrameCodec.ReadTarget(frame.Payload.Span));
    }

    [Fact]
    public void Open_round_trips_a_non_ascii_target_of_the_maximum_length()
    {
        var target = new string('é', ProtocolLimits.MaxTargetLength / 2); // two UTF-8 bytes each
        var frame = DecodeOne(FrameCodec.EncodeOpen(2, target));
        Assert.Equal(ProtocolLimits.MaxTargetLength, frame.Payload.Length);
        Assert.Equal(target, FrameCodec.ReadTarget(frame.Payload.Span));
    }

    [Theory]
    [InlineData(FrameType.OpenOk)]
    [InlineData(FrameType.Fin)]
    public void Empty_stream_frames_round_trip(FrameType type)
    {
        var frame = DecodeOne(FrameCodec.Encode(type, 4, ReadOnlySpan<byte>.Empty));
        Assert.Equal(type, frame.Type);
        Assert.Equal(4u, frame.StreamId);
        Assert.True(frame.Payload.IsEmpty);
    }

    [Theory]
    [InlineData(FrameType.OpenErr, (byte)OpenErrorCode.NotAllowed, "10.1.2.3:22 is outside the allow-list")]
    [InlineData(FrameType.OpenErr, (byte)OpenErrorCode.ConnectionRefused, "")]
    [InlineData(FrameType.Rst, (byte)ResetCode.ConnectionReset, "target reset the connection")]
    [InlineData(FrameType.Rst, (byte)ResetCode.Cancel, "ünïcode ✓")]
    public void Code_and_reason_frames_round_trip(FrameType type, byte code, string reason)
    {
        var frame = DecodeOne(FrameCodec.EncodeCodeAndReason(type, 9, code, reason));
        Assert.Equal(type, frame.Type);
        Assert.Equal(9u, frame.StreamId);
        Assert.Equal((code, reason), FrameCodec.ReadCodeAndReason(frame.Payload.Span));
    }

    [Fact]
    public void A_long_reason_is_cut_at_a_character_boundary_within_the_limit()
    {
        var reason = string.Concat(Enumerable.Repeat("€", 1000)); // 3 bytes each: 3000 bytes
        var frame = DecodeOne(FrameCodec.EncodeCodeAndReason(FrameType.Rst, 1, 1, reason));
        Assert.True(frame.Payload.Length - 1 <= ProtocolLimits.MaxReasonLength);
        var (_, decoded) = FrameCodec.ReadCodeAndReason(frame.Payload.Span);
        Assert.Equal(ProtocolLimits.MaxReasonLength / 3, decoded.Length);
        Assert.All(decoded, c => Assert.Equal('€', c));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(ProtocolLimits.MaxFramePayload)]
    public void Data_round_trips_byte_for_byte(int size)
    {
        var payload = new byte[size];
        new Random(size).NextBytes(payload);
        var frame = DecodeOne(FrameCodec.Encode(FrameType.Data, uint.MaxValue, payload));
        Assert.Equal(FrameType.Data, frame.Type);
        Assert.Equal(uint.MaxValue, frame.StreamId);
        Assert.Equal(payload, frame.Payload.ToArray());
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(65536u)]
    [InlineData((uint)int.MaxValue)]
    public void Window_round_trips_its_increment(uint increment)
    {
        var frame = DecodeOne(FrameCodec.EncodeWindow(3, increment));
        Assert.Equal(FrameType.Window, frame.Type);
        Assert.Equal(increment, FrameCodec.ReadWindowIncrement(frame.Payload.Span));
    }

    [Theory]
    [InlineData(FrameType.Ping, 0ul)]
    [InlineData(FrameType.Ping, ulong.MaxValue)]
    [InlineData(FrameType.Pong, 0x0102030405060708ul)]
    public void Ping_and_pong_round_trip_their_eight_bytes(FrameType type, ulong value)
    {
        var frame = DecodeOne(FrameCodec.EncodePing(type, value));
        Assert.Equal(type, frame.Type);
        Assert.Equal(0u, frame.StreamId);
        Assert.Equal(value, FrameCodec.ReadPing(frame.Payload.Span));
    }

    [Fact]
    public void GoAway_round_trips_code_reason_and_servers()
    {
        var frame = DecodeOne(FrameCodec.EncodeGoAway(GoAwayCode.Draining, "node-a is draining", new[] { "wss://b.example:443", "wss://c.example:443" }));
        Assert.Equal(FrameType.GoAway, frame.Type);
        var info = FrameCodec.ReadGoAway(frame.Payload.Span);
        Assert.Equal(GoAwayCode.Draining, info.Code);
        Assert.Equal("node-a is draining", info.Reason);
        Assert.Equal(new[] { "wss://b.example:443", "wss://c.example:443" }, info.SuggestedServers);
    }

    [Fact]
    public void GoAway_without_reason_or_servers_round_trips()
    {
        var info = FrameCodec.ReadGoAway(DecodeOne(FrameCodec.EncodeGoAway(GoAwayCode.Shutdown, "", Array.Empty<string>())).Payload.Span);
        Assert.Equal(GoAwayCode.Shutdown, info.Code);
        Assert.Equal("", info.Reason);
        Assert.Empty(info.SuggestedServers);
    }

    [Fact]
    public void GoAway_with_too_many_servers_is_cut_to_a_decodable_frame()
    {
        var servers = Enumerable.Range(0, 500).Select(i => $"wss://node-{i}.example:443").ToArray();
        var frame = DecodeOne(FrameCodec.EncodeGoAway(GoAwayCode.Kicked, "kick", servers));
        var info = FrameCodec.ReadGoAway(frame.Payload.Span);
        Assert.True(frame.Payload.Length <= 3 + 4 + FrameCodec.MaxServersLength);
        Assert.Equal(servers.Take(info.SuggestedServers.Count - 1), info.SuggestedServers.Take(info.SuggestedServers.Count - 1));
    }

    [Fact]
    public void Frames_back_to_back_decode_one_after_another()
    {
        var frames = new[]
        {
            FrameCodec.EncodeOpen(1, "a:1"),
            FrameCodec.Encode(FrameType.OpenOk, 1, ReadOnlySpan<byte>.Empty),
            FrameCodec.Encode(FrameType.Data, 1, new byte[] { 1, 2, 3 }),
            FrameCodec.EncodeWindow(1, 10),
            FrameCodec.Encode(FrameType.Fin, 1, ReadOnlySpan<byte>.Empty),
            FrameCodec.EncodeCodeAndReason(FrameType.Rst, 1, 0, "bye"),
            FrameCodec.EncodePing(FrameType.Ping, 5),
            FrameCodec.EncodePing(FrameType.Pong, 5),
            FrameCodec.EncodeGoAway(GoAwayCode.Draining, "d", new[] { "x" }),
            FrameCodec.EncodeCodeAndReason(FrameType.OpenErr, 3, 4, "no"),
        };
        ReadOnlyMemory<byte> input = frames.SelectMany(f => f).ToArray();
        var types = new List<FrameType>();
        while (!input.IsEmpty)
        {
            Assert.Equal(DecodeStatus.Frame, FrameCodec.TryDecode(input, ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out _));
            types.Add(frame.Type);
            input = input[consumed..];
        }
        Assert.Equal(new[]
        {
            FrameType.Open, FrameType.OpenOk, FrameType.Data, FrameType.Window, FrameType.Fin,
            FrameType.Rst, FrameType.Ping, FrameType.Pong, FrameType.GoAway, FrameType.OpenErr,
        }, types);
    }

    [Fact]
    public void Every_frame_type_has_a_round_trip_here()
    {
        // Guards this file: a new frame type needs a round-trip test above.
        Assert.Equal(10, Enum.GetValues<FrameType>().Length);
    }

    public static TheoryData<string, byte[]> NeedMoreInputs => new()
    {
        { "empty input", Array.Empty<byte>() },
        { "type byte only", new byte[] { (byte)FrameType.Data } },
        { "eight of nine header bytes", FrameCodec.Encode(FrameType.Data, 1, new byte[] { 1 })[..8] },
        { "header without its payload", FrameCodec.Encode(FrameType.Data, 1, new byte[] { 1, 2, 3 })[..9] },
        { "payload one byte short", FrameCodec.Encode(FrameType.Data, 1, new byte[100])[..^1] },
        { "maximum payload one byte short", FrameCodec.Encode(FrameType.Data, 1, new byte[ProtocolLimits.MaxFramePayload])[..^1] },
    };

    [Theory]
    [MemberData(nameof(NeedMoreInputs))]
    public void Incomplete_frames_need_more(string why, byte[] input)
    {
        var status = FrameCodec.TryDecode(input, ProtocolLimits.MaxFramePayload, out _, out var consumed, out var violation);
        Assert.True(status == DecodeStatus.NeedMore, $"{why}: got {status} {violation}");
        Assert.Equal(0, consumed);
        Assert.Null(violation);
    }

    private static byte[] Bytes(int count, byte value = (byte)'a') => Enumerable.Repeat(value, count).ToArray();

    private static byte[] GoAwayPayload(byte code, ushort reasonLength, byte[] rest)
    {
        var payload = new byte[3 + rest.Length];
        payload[0] = code;
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(1), reasonLength);
        rest.CopyTo(payload, 3);
        return payload;
    }

    public static TheoryData<string, byte[], int> MalformedFrames
    {
        get
        {
            var data = new TheoryData<string, byte[], int>
            {
                { "type 0x00", Raw(0x00, 1, new byte[] { 1 }), CloseCodes.ProtocolError },
                { "type 0x0B", Raw(0x0B, 1, new byte[] { 1 }), CloseCodes.ProtocolError },
                { "type 0xFF", Raw(0xFF, 0, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "unknown type in a one-byte partial header", new byte[] { 0x42 }, CloseCodes.ProtocolError },
                { "unknown type in an eight-byte partial header", Raw(0x0C, 1, Array.Empty<byte>())[..8], CloseCodes.ProtocolError },
                { "length one above the limit", Raw((byte)FrameType.Data, 1, Array.Empty<byte>(), ProtocolLimits.MaxFramePayload + 1), CloseCodes.MessageTooBig },
                { "length 0xFFFFFFFF", Raw((byte)FrameType.Data, 1, Array.Empty<byte>(), uint.MaxValue), CloseCodes.MessageTooBig },
                { "length 0x80000000", Raw((byte)FrameType.Ping, 0, Array.Empty<byte>(), 0x80000000), CloseCodes.MessageTooBig },
                { "oversize OPEN_OK", Raw((byte)FrameType.OpenOk, 1, Array.Empty<byte>(), 1_000_000), CloseCodes.MessageTooBig },
                { "empty DATA", Raw(FrameType.Data, 1, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "WINDOW of 3 bytes", Raw(FrameType.Window, 1, new byte[] { 0, 0, 1 }), CloseCodes.ProtocolError },
                { "WINDOW of 5 bytes", Raw(FrameType.Window, 1, new byte[] { 0, 0, 0, 1, 0 }), CloseCodes.ProtocolError },
                { "WINDOW without payload", Raw(FrameType.Window, 1, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "WINDOW increment 0", Raw(FrameType.Window, 1, new byte[] { 0, 0, 0, 0 }), CloseCodes.ProtocolError },
                { "WINDOW increment 2^31", Raw(FrameType.Window, 1, new byte[] { 0x80, 0, 0, 0 }), CloseCodes.ProtocolError },
                { "WINDOW increment 2^32-1", Raw(FrameType.Window, 1, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }), CloseCodes.ProtocolError },
                { "OPEN_OK with a payload", Raw(FrameType.OpenOk, 1, new byte[] { 0 }), CloseCodes.ProtocolError },
                { "FIN with a payload", Raw(FrameType.Fin, 1, new byte[] { 1, 2 }), CloseCodes.ProtocolError },
                { "OPEN with an empty target", Raw(FrameType.Open, 1, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "OPEN target one byte too long", Raw(FrameType.Open, 1, Bytes(ProtocolLimits.MaxTargetLength + 1)), CloseCodes.ProtocolError },
                { "OPEN target with a broken UTF-8 sequence", Raw(FrameType.Open, 1, new byte[] { (byte)'a', 0xC3, 0x28 }), CloseCodes.ProtocolError },
                { "OPEN target with an overlong encoding", Raw(FrameType.Open, 1, new byte[] { 0xC0, 0xAF }), CloseCodes.ProtocolError },
                { "OPEN target with a lone surrogate", Raw(FrameType.Open, 1, new byte[] { 0xED, 0xA0, 0x80 }), CloseCodes.ProtocolError },
                { "OPEN target ending inside a character", Raw(FrameType.Open, 1, new byte[] { (byte)'h', 0xE2, 0x82 }), CloseCodes.ProtocolError },
                { "RST without a code", Raw(FrameType.Rst, 1, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "OPEN_ERR without a code", Raw(FrameType.OpenErr, 1, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "RST reason one byte too long", Raw(FrameType.Rst, 1, Bytes(1 + ProtocolLimits.MaxReasonLength + 1)), CloseCodes.ProtocolError },
                { "OPEN_ERR reason one byte too long", Raw(FrameType.OpenErr, 1, Bytes(1 + ProtocolLimits.MaxReasonLength + 1)), CloseCodes.ProtocolError },
                { "RST reason not UTF-8", Raw(FrameType.Rst, 1, new byte[] { 1, 0xFF }), CloseCodes.ProtocolError },
                { "OPEN_ERR reason not UTF-8", Raw(FrameType.OpenErr, 1, new byte[] { 1, 0xFE, 0xFF }), CloseCodes.ProtocolError },
                { "PING of 7 bytes", Raw(FrameType.Ping, 0, Bytes(7)), CloseCodes.ProtocolError },
                { "PING of 9 bytes", Raw(FrameType.Ping, 0, Bytes(9)), CloseCodes.ProtocolError },
                { "PONG without payload", Raw(FrameType.Pong, 0, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "GOAWAY without payload", Raw(FrameType.GoAway, 0, Array.Empty<byte>()), CloseCodes.ProtocolError },
                { "GOAWAY of 2 bytes", Raw(FrameType.GoAway, 0, new byte[] { 1, 0 }), CloseCodes.ProtocolError },
                { "GOAWAY reason length beyond the payload", Raw(FrameType.GoAway, 0, GoAwayPayload(1, 5, Bytes(4))), CloseCodes.ProtocolError },
                { "GOAWAY reason length 0xFFFF", Raw(FrameType.GoAway, 0, GoAwayPayload(1, 0xFFFF, Bytes(10))), CloseCodes.ProtocolError },
                { "GOAWAY reason length above the limit", Raw(FrameType.GoAway, 0, GoAwayPayload(1, ProtocolLimits.MaxReasonLength + 1, Bytes(ProtocolLimits.MaxReasonLength + 1))), CloseCodes.ProtocolError },
                { "GOAWAY server list above the limit", Raw(FrameType.GoAway, 0, GoAwayPayload(1, 0, Bytes(FrameCodec.MaxServersLength + 1))), CloseCodes.ProtocolError },
                { "GOAWAY reason not UTF-8", Raw(FrameType.GoAway, 0, GoAwayPayload(1, 1, new byte[] { 0x80 })), CloseCodes.ProtocolError },
                { "GOAWAY servers not UTF-8", Raw(FrameType.GoAway, 0, GoAwayPayload(1, 0, new byte[] { (byte)'w', 0xC3 })), CloseCodes.ProtocolError },
            };
            foreach (var type in new[] { FrameType.Open, FrameType.OpenOk, FrameType.OpenErr, FrameType.Data, FrameType.Window, FrameType.Fin, FrameType.Rst })
            {
                data.Add($"{type} on stream 0", Raw(type, 0, ValidPayload(type)), CloseCodes.ProtocolError);
            }
            foreach (var type in new[] { FrameType.Ping, FrameType.Pong, FrameType.GoAway })
            {
                data.Add($"{type} on stream 1", Raw(type, 1, ValidPayload(type)), CloseCodes.ProtocolError);
                data.Add($"{type} on stream 0x80000000", Raw(type, 0x80000000, ValidPayload(type)), CloseCodes.ProtocolError);
            }
            return data;
        }
    }

    /// <summary>A payload that is valid for <paramref name="type"/>, so only the stream id is wrong.</summary>
    internal static byte[] ValidPayload(FrameType type) => type switch
    {
        FrameType.Open => Encoding.UTF8.GetBytes("host:1"),
        FrameType.OpenOk or FrameType.Fin => Array.Empty<byte>(),
        FrameType.OpenErr or FrameType.Rst => new byte[] { 1, (byte)'x' },
        FrameType.Data => new byte[] { 42 },
        FrameType.Window => new byte[] { 0, 1, 0, 0 },
        FrameType.Ping or FrameType.Pong => new byte[8],
        FrameType.GoAway => GoAwayPayload(1, 0, Array.Empty<byte>()),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    [Theory]
    [MemberData(nameof(MalformedFrames))]
    public void Malformed_frames_are_violations_with_their_close_code(string why, byte[] input, int closeCode)
    {
        var status = FrameCodec.TryDecode(input, ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
        Assert.True(status == DecodeStatus.Violation, $"{why}: got {status}");
        Assert.NotNull(violation);
        Assert.Equal(closeCode, violation.CloseCode);
        Assert.False(string.IsNullOrWhiteSpace(violation.Reason));
        Assert.Equal(0, consumed);
        Assert.Equal(default, frame);
    }

    [Fact]
    public void A_valid_frame_followed_by_garbage_decodes_the_frame_first()
    {
        var bytes = FrameCodec.EncodePing(FrameType.Ping, 1).Concat(new byte[] { 0xFF, 0xFF }).ToArray();
        Assert.Equal(DecodeStatus.Frame, FrameCodec.TryDecode(bytes, ProtocolLimits.MaxFramePayload, out _, out var consumed, out _));
        Assert.Equal(DecodeStatus.Violation, FrameCodec.TryDecode(bytes.AsMemory(consumed), ProtocolLimits.MaxFramePayload, out _, out _, out _));
    }

    [Fact]
    public void The_payload_limit_is_the_callers()
    {
        var bytes = FrameCodec.Encode(FrameType.Data, 1, new byte[101]);
        Assert.Equal(DecodeStatus.Frame, FrameCodec.TryDecode(bytes, 101, out _, out _, out _));
        Assert.Equal(DecodeStatus.Violation, FrameCodec.TryDecode(bytes, 100, out _, out _, out var violation));
        Assert.Equal(CloseCodes.MessageTooBig, violation!.CloseCode);
        // The size is judged from the header alone, before the payload has arrived.
        Assert.Equal(DecodeStatus.Violation, FrameCodec.TryDecode(bytes.AsMemory(0, 9), 100, out _, out _, out _));
    }

    [Fact]
    public void Frames_inside_a_larger_buffer_point_at_their_own_payload()
    {
        var bytes = new byte[] { 9, 9, 9 }.Concat(FrameCodec.Encode(FrameType.Data, 5, new byte[] { 7, 8 })).Concat(new byte[] { 1 }).ToArray();
        Assert.Equal(DecodeStatus.Frame, FrameCodec.TryDecode(bytes.AsMemory(3), ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out _));
        Assert.Equal(11, consumed);
        Assert.Equal(new byte[] { 7, 8 }, frame.Payload.ToArray());
    }
}
