using System.Net.Sockets;
using System.Security.Cryptography;
using Connect.Tunnel.Piping;
using Connect.Testing.Tunnel;

namespace Connect.Tunnel.Tests;

/// <summary>
/// The agent's splice of a target socket and a tunnel stream, over a real link and real sockets: the target's bytes
/// are read straight into the stream's send blocks (no splice buffer), so these check that nothing is lost, reordered
/// or sent beyond the peer's credit, and that the target's end still becomes FIN.
/// </summary>
public class SpliceTests
{
    [Theory]
    [MemberData(nameof(TunnelMuxTests.Transports), MemberType = typeof(TunnelMuxTests))]
    public async Task Target_bytes_beyond_the_window_arrive_whole_and_in_order_then_FIN(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var opened = link.Server.OpenStreamAsync("bulk-target").WaitAsync(Timeouts.Default);
        var agentSide = await link.AcceptedAsync();
        var serverSide = await opened;
        var (target, agentSocket) = await Loopback.ConnectedSocketsAsync();
        using var targetSocket = target;
        var splice = Splice.RunAsync(new MuxStreamEnd(agentSide), new SocketEnd(agentSocket));

        // 3 MiB and 5 bytes: many times the 256 KiB window, and not a multiple of any frame size.
        var payload = RandomNumberGenerator.GetBytes((3 << 20) + 5);
        var send = Task.Run(async () =>
        {
            for (var at = 0; at < payload.Length;)
            {
                // Uneven writes, as a real target's are.
                var size = Math.Min(payload.Length - at, 1 + (at % 70_000));
                at += await targetSocket.SendAsync(payload.AsMemory(at, size), SocketFlags.None);
            }
            targetSocket.Shutdown(SocketShutdown.Send);
        });

        // Read slowly at first, so the agent runs out of credit and has to wait for WINDOW.
        var received = new MemoryStream();
        var buffer = new byte[7000];
        var reads = 0;
        while (true)
        {
            var read = await serverSide.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Bulk);
            if (read == 0)
            {
                break;
            }
            received.Write(buffer, 0, read);
            if (++reads < 20)
            {
                await Task.Delay(10);
            }
        }
        await send.WaitAsync(Timeouts.Default);

        Assert.Equal(payload.Length, received.Length);
        Assert.True(payload.AsSpan().SequenceEqual(received.GetBuffer().AsSpan(0, (int)received.Length)), "the bytes differ");

        // The other direction still works after the target's half-close, and its end closes the splice cleanly.
        await serverSide.WriteAsync("bye"u8.ToArray()).AsTask().WaitAsync(Timeouts.Default);
        await serverSide.CompleteWritesAsync();
        var back = new byte[3];
        var got = 0;
        while (got < 3)
        {
            var n = await targetSocket.ReceiveAsync(back.AsMemory(got), SocketFlags.None).AsTask().WaitAsync(Timeouts.Default);
            Assert.NotEqual(0, n);
            got += n;
        }
        Assert.Equal("bye"u8.ToArray(), back);
        var result = await splice.WaitAsync(Timeouts.Default);
        Assert.True(result.Clean, result.Error);
        Assert.Equal(payload.Length, result.BytesBToA);
        Assert.Equal(3, result.BytesAToB);
        Assert.Equal(0, link.Server.ResetsReceived);
    }

    [Theory]
    [MemberData(nameof(TunnelMuxTests.Transports), MemberType = typeof(TunnelMuxTests))]
    public async Task A_target_reset_resets_the_stream(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var opened = link.Server.OpenStreamAsync("reset-target").WaitAsync(Timeouts.Default);
        var agentSide = await link.AcceptedAsync();
        var serverSide = await opened;
        var (target, agentSocket) = await Loopback.ConnectedSocketsAsync();
        var splice = Splice.RunAsync(new MuxStreamEnd(agentSide), new SocketEnd(agentSocket));

        await target.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None);
        var first = new byte[3];
        var got = 0;
        while (got < 3)
        {
            got += await serverSide.ReadAsync(first.AsMemory(got)).AsTask().WaitAsync(Timeouts.Default);
        }
        target.LingerState = new LingerOption(true, 0);
        target.Dispose(); // a TCP RST from the target

        var result = await splice.WaitAsync(Timeouts.Default);
        Assert.False(result.Clean);
        await Assert.ThrowsAsync<Multiplexing.StreamResetException>(() => serverSide.CopyToAsync(Stream.Null).WaitAsync(Timeouts.Default));
    }
}
