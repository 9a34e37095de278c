using System.Buffers.Binary;
using System.Threading.Channels;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Tests;

/// <summary>
/// A raw peer writes bytes the multiplexer must refuse. A violation closes that link with its close code
/// and a reason; RunAsync returns normally; a stream-level mistake costs only the stream (RST).
/// </summary>
public class ProtocolViolationTests
{
    public static TheoryData<TransportKind> Transports => new() { TransportKind.WebSocket, TransportKind.Stream };

    /// <summary>Like the agent: dialled, accepts OPENs (even ids, from the server) and hands them to the test.</summary>
    private static async Task<(RawLink Link, ChannelReader<MuxStream> Accepted)> AgentLinkAsync(TransportKind kind, Func<MuxOptions, MuxOptions>? configure = null)
    {
        var accepted = Channel.CreateUnbounded<MuxStream>();
        var options = (configure ?? (o => o))(MuxPair.AgentOptions);
        var link = await RawLink.StartAsync(kind, options, incoming => accepted.Writer.TryWrite(incoming.Accept()));
        return (link, accepted.Reader);
    }

    /// <summary>The close code the raw peer saw: the code itself on a WebSocket; a stream only ends.</summary>
    private static async Task ExpectRawCloseAsync(RawLink link, int code)
    {
        var seen = await link.Raw.ExpectCloseAsync();
        if (link.Raw.Kind == TransportKind.WebSocket)
        {
            Assert.Equal(code, seen);
            Assert.False(string.IsNullOrEmpty(link.Raw.CloseReason));
        }
    }

    private static async Task ExpectStillOpenAsync(RawLink link)
    {
        await link.Raw.SendAsync(FrameCodec.EncodePing(FrameType.Ping, 0xC0FFEE));
        var pong = await link.Raw.ExpectFrameAsync(FrameType.Pong);
        Assert.Equal(0xC0FFEEul, FrameCodec.ReadPing(pong.Payload));
        Assert.False(link.Run.IsCompleted);
    }

    private static async Task OpenAcceptedStreamAsync(RawLink link, uint id)
    {
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(id, "db:5432"));
        var ok = await link.Raw.ExpectFrameAsync(FrameType.OpenOk);
        Assert.Equal(id, ok.StreamId);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Ping_is_answered_with_a_pong_carrying_the_same_bytes(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Data_for_a_stream_that_was_never_opened_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Data, 2, new byte[] { 1 }));
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.False(info.ByPeer);
        Assert.Contains("never opened", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.ProtocolError);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Window_and_fin_for_unknown_streams_close_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        await link.Raw.SendAsync(FrameCodec.EncodeWindow(1, 10)); // our own parity, never opened by us
        await link.ExpectClosedAsync(CloseCodes.ProtocolError);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Data_beyond_the_initial_window_without_credit_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, accepted) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        var stream = await accepted.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

        // Exactly one window is allowed...
        for (var i = 0; i < ProtocolLimits.InitialWindow / ProtocolLimits.MaxFramePayload; i++)
        {
            await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Data, 2, new byte[ProtocolLimits.MaxFramePayload]));
        }
        await ExpectStillOpenAsync(link);
        Assert.Equal(ProtocolLimits.InitialWindow, stream.BufferedBytes);

        // ...one byte more, with no WINDOW in between, is a violation.
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Data, 2, new byte[1]));
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.Contains("window", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.ProtocolError);
        var reset = await Assert.ThrowsAsync<StreamResetException>(() => stream.ReadAsync(new byte[1]).AsTask());
        Assert.Equal(ResetCode.LinkLost, reset.Code);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Window_that_overflows_the_send_credit_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        await link.Raw.SendAsync(FrameCodec.EncodeWindow(2, int.MaxValue)); // on top of the initial 256 KiB
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.Contains("overflows", info.Reason);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Data_after_fin_resets_only_that_stream(TransportKind kind)
    {
        var (link, accepted) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        var stream = await accepted.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

        await link.Raw.SendAsync(
            FrameCodec.Encode(FrameType.Data, 2, "last"u8),
            FrameCodec.Encode(FrameType.Fin, 2, ReadOnlySpan<byte>.Empty),
            FrameCodec.Encode(FrameType.Data, 2, "late"u8));

        var rst = await link.Raw.ExpectFrameAsync(FrameType.Rst);
        Assert.Equal(2u, rst.StreamId);
        Assert.Equal((byte)ResetCode.ProtocolError, FrameCodec.ReadCodeAndReason(rst.Payload).Code);
        await Assert.ThrowsAsync<StreamResetException>(() => stream.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        await ExpectStillOpenAsync(link);
        Assert.Equal(0, link.Mux.ActiveStreams);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_second_fin_resets_only_that_stream(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        var fin = FrameCodec.Encode(FrameType.Fin, 2, ReadOnlySpan<byte>.Empty);
        await link.Raw.SendAsync(fin, fin);
        var rst = await link.Raw.ExpectFrameAsync(FrameType.Rst);
        Assert.Equal((byte)ResetCode.ProtocolError, FrameCodec.ReadCodeAndReason(rst.Payload).Code);
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Frames_in_flight_for_a_stream_that_just_ended_are_dropped(TransportKind kind)
    {
        var (link, accepted) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        var stream = await accepted.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        stream.Reset(ResetCode.Cancel, "not wanted");
        await link.Raw.ExpectFrameAsync(FrameType.Rst);

        // The peer had not seen the RST yet when it sent these.
        await link.Raw.SendAsync(
            FrameCodec.Encode(FrameType.Data, 2, "x"u8),
            FrameCodec.EncodeWindow(2, 100),
            FrameCodec.Encode(FrameType.Fin, 2, ReadOnlySpan<byte>.Empty),
            FrameCodec.EncodeCodeAndReason(FrameType.Rst, 2, 0, "crossed"));
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Open_towards_a_side_that_accepts_none_closes_the_link_with_1008(TransportKind kind)
    {
        // The server end of an agent link: the agent may not open streams.
        await using var link = await RawLink.StartAsync(kind, MuxPair.ServerOptions);
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(1, "internal-admin:22"));
        var info = await link.ExpectClosedAsync(CloseCodes.PolicyViolation);
        Assert.False(info.ByPeer);
        await ExpectRawCloseAsync(link, CloseCodes.PolicyViolation);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Open_with_the_wrong_parity_or_a_reused_id_closes_the_link_with_1002(TransportKind kind)
    {
        var (wrongParity, _) = await AgentLinkAsync(kind);
        await using (wrongParity)
        {
            await wrongParity.Raw.SendAsync(FrameCodec.EncodeOpen(3, "db:1")); // odd ids belong to the agent itself
            await wrongParity.ExpectClosedAsync(CloseCodes.ProtocolError);
        }

        var (reused, _) = await AgentLinkAsync(kind);
        await using (reused)
        {
            await OpenAcceptedStreamAsync(reused, 4);
            await reused.Raw.SendAsync(FrameCodec.EncodeOpen(2, "db:1")); // ids must increase
            var info = await reused.ExpectClosedAsync(CloseCodes.ProtocolError);
            Assert.Contains("reuses", info.Reason);
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Open_ok_for_a_stream_the_peer_opened_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.OpenOk, 2, ReadOnlySpan<byte>.Empty));
        await link.ExpectClosedAsync(CloseCodes.ProtocolError);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Open_after_goaway_was_sent_is_refused_with_going_away(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        Assert.True(link.Mux.GoAway(GoAwayCode.Shutdown, "agent stopping", Array.Empty<string>()));
        var goAway = await link.Raw.ExpectFrameAsync(FrameType.GoAway);
        Assert.Equal("agent stopping", FrameCodec.ReadGoAway(goAway.Payload).Reason);

        await link.Raw.SendAsync(FrameCodec.EncodeOpen(2, "db:1"));
        var err = await link.Raw.ExpectFrameAsync(FrameType.OpenErr);
        Assert.Equal(2u, err.StreamId);
        Assert.Equal((byte)OpenErrorCode.GoingAway, FrameCodec.ReadCodeAndReason(err.Payload).Code);
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Open_beyond_the_stream_limit_is_refused_with_too_many_streams(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind, o => o with { MaxStreams = 1 });
        await using var _ = link;
        await OpenAcceptedStreamAsync(link, 2);
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(4, "db:2"));
        var err = await link.Raw.ExpectFrameAsync(FrameType.OpenErr);
        Assert.Equal(4u, err.StreamId);
        Assert.Equal((byte)OpenErrorCode.TooManyStreams, FrameCodec.ReadCodeAndReason(err.Payload).Code);
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_frame_above_the_size_limit_closes_the_link_with_1009(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        // Only the header: the size is judged before any payload arrives.
        await link.Raw.SendAsync(FrameCodecTests.Raw((byte)FrameType.Data, 2, Array.Empty<byte>(), ProtocolLimits.MaxFramePayload + 1));
        var info = await link.ExpectClosedAsync(CloseCodes.MessageTooBig);
        Assert.False(info.ByPeer);
        await ExpectRawCloseAsync(link, CloseCodes.MessageTooBig);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task An_unknown_frame_type_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await link.Raw.SendAsync(new byte[] { 0x0B, 0, 0, 0, 0, 0, 0, 0, 0 });
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.Contains("unknown frame type", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.ProtocolError);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_malformed_frame_after_valid_ones_closes_the_link_with_1002(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await link.Raw.SendAsync(
            FrameCodec.EncodePing(FrameType.Ping, 1),
            FrameCodec.EncodeOpen(2, "db:1"),
            FrameCodecTests.Raw((byte)FrameType.Window, 2, new byte[] { 0, 0, 0, 0 }));
        Assert.Contains("WINDOW", (await link.ExpectClosedAsync(CloseCodes.ProtocolError)).Reason);
    }

    [Fact]
    public async Task A_text_message_closes_the_link_with_1003()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.WebSocket);
        await using var _ = link;
        await link.Raw.SendTextAsync("{\"type\":\"open\"}");
        var info = await link.ExpectClosedAsync(CloseCodes.UnsupportedData);
        Assert.False(info.ByPeer);
        await ExpectRawCloseAsync(link, CloseCodes.UnsupportedData);
    }

    [Fact]
    public async Task A_message_that_ends_inside_a_frame_closes_the_link_with_1002()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.WebSocket);
        await using var _ = link;
        var ping = FrameCodec.EncodePing(FrameType.Ping, 7);
        await link.Raw.SendAsync(ping[..12]); // the rest would come in the next message: not allowed
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.Contains("inside a frame", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.ProtocolError);
    }

    [Fact]
    public async Task A_message_that_ends_inside_a_header_closes_the_link_with_1002()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.WebSocket);
        await using var _ = link;
        await link.Raw.SendAsync(FrameCodec.EncodePing(FrameType.Ping, 7).Concat(new byte[] { (byte)FrameType.Ping, 0, 0 }).ToArray());
        await link.ExpectClosedAsync(CloseCodes.ProtocolError);
    }

    [Fact]
    public async Task A_frame_split_across_fragments_of_one_message_is_fine()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.WebSocket);
        await using var _ = link;
        var ping = FrameCodec.EncodePing(FrameType.Ping, 99);
        await link.Raw.SendFragmentAsync(ping[..3], endOfMessage: false);
        await link.Raw.SendFragmentAsync(ping[3..11], endOfMessage: false);
        await link.Raw.SendFragmentAsync(ping[11..], endOfMessage: true);
        Assert.Equal(99ul, FrameCodec.ReadPing((await link.Raw.ExpectFrameAsync(FrameType.Pong)).Payload));
        await ExpectStillOpenAsync(link);
    }

    [Fact]
    public async Task A_message_above_the_message_size_limit_closes_the_link_with_1009()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.WebSocket, o => o with { MaxMessageSize = 4096 });
        await using var _ = link;
        var pong = FrameCodec.EncodePing(FrameType.Pong, 1);
        await link.Raw.SendAsync(Enumerable.Repeat(pong, 4096 / pong.Length + 1).ToArray()); // valid frames, too many in one message
        var info = await link.ExpectClosedAsync(CloseCodes.MessageTooBig);
        Assert.Contains("message larger", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.MessageTooBig);
    }

    [Fact]
    public async Task A_byte_stream_that_ends_inside_a_frame_is_a_protocol_error()
    {
        var (link, _) = await AgentLinkAsync(TransportKind.Stream);
        await using var _ = link;
        await link.Raw.SendAsync(FrameCodec.EncodePing(FrameType.Ping, 1)[..5]);
        await link.Raw.CloseOutputAsync();
        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.True(info.ByPeer);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_clean_close_from_the_peer_is_echoed_and_reported_as_the_peers(TransportKind kind)
    {
        var (link, _) = await AgentLinkAsync(kind);
        await using var _ = link;
        await link.Raw.CloseOutputAsync();
        var info = await link.ExpectClosedAsync(CloseCodes.Normal);
        Assert.True(info.ByPeer);
        await ExpectRawCloseAsync(link, CloseCodes.Normal);
    }

    [Fact]
    public async Task Frames_split_at_every_byte_of_a_tcp_stream_still_decode()
    {
        var (link, accepted) = await AgentLinkAsync(TransportKind.Stream);
        await using var _ = link;
        var bytes = FrameCodec.EncodeOpen(2, "db:1")
            .Concat(FrameCodec.Encode(FrameType.Data, 2, "hello"u8))
            .Concat(FrameCodec.Encode(FrameType.Fin, 2, ReadOnlySpan<byte>.Empty))
            .ToArray();
        foreach (var b in bytes)
        {
            await link.Raw.SendAsync(new[] { b });
        }
        Assert.Equal(2u, (await link.Raw.ExpectFrameAsync(FrameType.OpenOk)).StreamId);
        var stream = await accepted.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        var received = new MemoryStream();
        await stream.CopyToAsync(received).WaitAsync(Timeouts.Default);
        Assert.Equal("hello"u8.ToArray(), received.ToArray());
        await ExpectStillOpenAsync(link);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_throwing_open_handler_closes_the_link_with_1011_instead_of_escaping(TransportKind kind)
    {
        await using var link = await RawLink.StartAsync(kind, MuxPair.AgentOptions, _ => throw new InvalidOperationException("handler bug"));
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(2, "db:1"));
        var info = await link.ExpectClosedAsync(CloseCodes.InternalError);
        Assert.False(info.ByPeer);
        Assert.Contains("handler bug", info.Reason);
        await ExpectRawCloseAsync(link, CloseCodes.InternalError);
    }
}
