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
    private static async Task<(RawLink Link, ChannelReader<MuxStream> Accepted)> AgentLinkAsync(TransportKind kind)
    {
        var accepted = Channel.CreateUnbounded<MuxStream>();
        var link = await RawLink.StartAsync(kind, MuxPair.AgentOptions, incoming => accepted.Writer.TryWrite(incoming.Accept()));
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
}
