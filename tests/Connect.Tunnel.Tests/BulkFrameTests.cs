using System.Threading.Channels;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Tests;

/// <summary>
/// The bulk data path (issue 15): a stream alone on its link sends frames of <see cref="MuxOptions.SoloDataChunk"/>
/// and goes back to <see cref="MuxOptions.MaxDataChunk"/> when another stream opens; on a WebSocket the read loop
/// receives a large DATA payload straight into the array the stream keeps, whatever the receive boundaries.
/// </summary>
public class BulkFrameTests
{
    public static TheoryData<TransportKind> Transports => new() { TransportKind.WebSocket, TransportKind.Stream };

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Like the agent: dialled, accepts OPENs from the raw peer (the server) and hands them to the test.</summary>
    private static async Task<(RawLink Link, ChannelReader<MuxStream> Accepted)> AgentLinkAsync(TransportKind kind, bool receiveDataDirect = false)
    {
        var accepted = Channel.CreateUnbounded<MuxStream>();
        var link = await RawLink.StartAsync(kind, MuxPair.AgentOptions with { ReceiveDataDirect = receiveDataDirect }, incoming => accepted.Writer.TryWrite(incoming.Accept()));
        return (link, accepted.Reader);
    }

    private static async Task<MuxStream> OpenAsync(RawLink link, ChannelReader<MuxStream> accepted, uint id)
    {
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(id, "bulk:443"));
        Assert.Equal(id, (await link.Raw.ExpectFrameAsync(FrameType.OpenOk)).StreamId);
        return await accepted.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
    }

    /// <summary>Reads DATA frames of <paramref name="streamId"/> until <paramref name="total"/> bytes came; returns the bytes and each frame's size.</summary>
    private static async Task<(byte[] Bytes, List<int> Sizes)> ReadDataAsync(RawPeer raw, uint streamId, int total)
    {
        var bytes = new MemoryStream();
        var sizes = new List<int>();
        while (bytes.Length < total)
        {
            var frame = await raw.ExpectFrameAsync(FrameType.Data);
            Assert.Equal(streamId, frame.StreamId);
            sizes.Add(frame.Payload.Length);
            bytes.Write(frame.Payload);
        }
        return (bytes.ToArray(), sizes);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_stream_alone_on_its_link_sends_64_KiB_frames_and_every_byte_arrives_in_order(TransportKind kind)
    {
        var (link, accepted) = await AgentLinkAsync(kind);
        await using var _ = link;
        await using var stream = await OpenAsync(link, accepted, 2);

        // Less than the initial window (256 KiB), so it all goes out without WINDOW frames from the raw peer.
        var sent = RandomBytes(200 * 1024, 7);
        await stream.WriteAsync(sent).AsTask().WaitAsync(Timeouts.Default);

        var (received, sizes) = await ReadDataAsync(link.Raw, 2, sent.Length);
        Assert.Equal(sent, received);
        Assert.Equal(ProtocolLimits.MaxFramePayload, sizes.Max()); // larger than MaxDataChunk (32 KiB), the old largest frame
        Assert.All(sizes, size => Assert.InRange(size, 1, ProtocolLimits.MaxFramePayload));
        Assert.Equal(4, sizes.Count); // 64 + 64 + 64 + 8 KiB
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task With_a_second_stream_open_frames_go_back_to_MaxDataChunk(TransportKind kind)
    {
        var (link, accepted) = await AgentLinkAsync(kind);
        await using var _ = link;
        await using var bulk = await OpenAsync(link, accepted, 2);
        await using var other = await OpenAsync(link, accepted, 4);

        var sent = RandomBytes(200 * 1024, 8);
        await bulk.WriteAsync(sent).AsTask().WaitAsync(Timeouts.Default);

        var (received, sizes) = await ReadDataAsync(link.Raw, 2, sent.Length);
        Assert.Equal(sent, received);
        // The fairness quantum: no frame of the bulk stream makes the other stream's frames wait behind more than this.
        Assert.All(sizes, size => Assert.InRange(size, 1, MuxPair.AgentOptions.MaxDataChunk));
    }

    /// <summary>
    /// Where the raw peer cuts one WebSocket message into fragments (each fragment is one receive at the multiplexer),
    /// and whether a large frame is cut inside its payload (then the rest of it is received straight into its array).
    /// </summary>
    public static TheoryData<int[], bool> Cuts => new()
    {
        { new[] { 9 + 1000, 9 + 30_000 }, true },                // inside the first frame's payload, twice
        { new[] { 9 }, true },                                   // right after the first frame's header
        { new[] { 5, 9 + 40_960 + 9 + 50 }, false },             // inside the first header, then inside the small frame
        { new[] { 9 + 40_960 + 9 + 100 + 9 + 10 }, true },       // inside the third (large) frame, just after its header
    };

    [Theory]
    [MemberData(nameof(Cuts))]
    public async Task Large_data_frames_split_across_receives_reach_the_reader_byte_for_byte(int[] cuts, bool cutInsideLargePayload)
    {
        var (link, accepted) = await AgentLinkAsync(TransportKind.WebSocket, receiveDataDirect: true);
        await using var _ = link;
        await using var stream = await OpenAsync(link, accepted, 2);

        // One message of three frames: a large DATA frame (received straight into its own array), a small one (packed
        // into a shared segment) and another large one; then a second message with one more large frame.
        var first = RandomBytes(40_960, 1);
        var small = RandomBytes(100, 2);
        var third = RandomBytes(20_000, 3);
        var fourth = RandomBytes(60_000, 4);
        var message = FrameCodec.Encode(FrameType.Data, 2, first).Concat(FrameCodec.Encode(FrameType.Data, 2, small)).Concat(FrameCodec.Encode(FrameType.Data, 2, third)).ToArray();
        var at = 0;
        foreach (var cut in cuts)
        {
            await link.Raw.SendFragmentAsync(message[at..cut], endOfMessage: false);
            at = cut;
        }
        await link.Raw.SendFragmentAsync(message[at..], endOfMessage: true);
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Data, 2, fourth));
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Fin, 2, ReadOnlySpan<byte>.Empty));

        var received = new MemoryStream();
        await stream.CopyToAsync(received).WaitAsync(Timeouts.Default);
        Assert.Equal(first.Concat(small).Concat(third).Concat(fourth).ToArray(), received.ToArray());
        if (cutInsideLargePayload)
        {
            Assert.True(link.Mux.DirectDataFrames >= 1, "the large frame cut inside its payload was received straight into the stream's array");
        }
        Assert.False(link.Run.IsCompleted);
    }

    [Fact]
    public async Task A_message_that_ends_inside_a_large_frame_being_received_directly_closes_the_link_with_1002()
    {
        var (link, accepted) = await AgentLinkAsync(TransportKind.WebSocket, receiveDataDirect: true);
        await using var _ = link;
        await using var stream = await OpenAsync(link, accepted, 2);

        var frame = FrameCodec.Encode(FrameType.Data, 2, RandomBytes(40_000, 5));
        await link.Raw.SendFragmentAsync(frame[..5_000], endOfMessage: false);
        await link.Raw.SendFragmentAsync(frame[5_000..20_000], endOfMessage: true); // 20,009 bytes of the frame missing

        var info = await link.ExpectClosedAsync(CloseCodes.ProtocolError);
        Assert.Contains("a message ended inside a frame", info.Reason);
        await Assert.ThrowsAsync<StreamResetException>(() => stream.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
    }
}
