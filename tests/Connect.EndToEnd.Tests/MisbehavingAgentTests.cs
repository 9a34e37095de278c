using System.Net.WebSockets;
using System.Text;
using Connect.Testing;
using Connect.Tunnel.Frames;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// A hand-written "agent" on a raw ClientWebSocket that speaks connect.v1 badly is closed with the protocol's close code
/// and a reason, while a real agent's session on the same node keeps serving: a tunnel opened before the violation
/// still echoes after it, and a new one opens.
/// </summary>
public sealed class MisbehavingAgentTests(HardeningFixture fixture) : IClassFixture<HardeningFixture>
{
    private static byte[] Frame(byte type, uint id, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = type;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), id);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(5), (uint)payload.Length);
        payload.CopyTo(frame, 9);
        return frame;
    }

    public static TheoryData<string, int> Cases => new()
    {
        { "unknown frame type", CloseCodes.ProtocolError },
        { "garbage that ends inside a header", CloseCodes.ProtocolError },
        { "text message", CloseCodes.UnsupportedData },
        { "DATA for a stream never opened", CloseCodes.ProtocolError },
        { "OPEN from the agent side", CloseCodes.PolicyViolation },
        { "frame length above 64 KiB", CloseCodes.MessageTooBig },
        // PINGs in many small messages while never reading the PONGs: the control queue limit closes it (1008);
        // the message size limit (1009) is covered in Connect.Tunnel.Tests.
        { "a flood of PINGs that never reads the PONGs", CloseCodes.PolicyViolation },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_violating_agent_is_closed_with_the_right_code_while_other_sessions_keep_serving(string name, int expectedCode)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var before = await OpenEchoAsync(timeout.Token);
        using var rogue = await ConnectRogueAsync("rogue-" + Math.Abs(name.GetHashCode()), timeout.Token);

        switch (name)
        {
            case "unknown frame type":
                await rogue.SendAsync(Frame(0xEE, 0, []), WebSocketMessageType.Binary, true, timeout.Token);
                break;
            case "garbage that ends inside a header":
                await rogue.SendAsync(new byte[] { 0x04, 0x00, 0x01 }, WebSocketMessageType.Binary, true, timeout.Token);
                break;
            case "text message":
                await rogue.SendAsync(Encoding.UTF8.GetBytes("hello?"), WebSocketMessageType.Text, true, timeout.Token);
                break;
            case "DATA for a stream never opened":
                await rogue.SendAsync(Frame(0x04, 3, [1, 2, 3]), WebSocketMessageType.Binary, true, timeout.Token);
                break;
            case "OPEN from the agent side":
                await rogue.SendAsync(Frame(0x01, 1, Encoding.UTF8.GetBytes("127.0.0.1:22")), WebSocketMessageType.Binary, true, timeout.Token);
                break;
            case "frame length above 64 KiB":
                var header = Frame(0x04, 2, []);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(5), 70_000);
                await rogue.SendAsync(header, WebSocketMessageType.Binary, true, timeout.Token);
                break;
            case "a flood of PINGs that never reads the PONGs":
                try
                {
                    // Valid PING frames in messages well under the 1 MiB limit, sent until the server gives up on us: once the
                    // socket buffers are full of unread PONGs, the control queue limit closes the link (1008).
                    var ping = Frame(0x08, 0, new byte[8]);
                    var message = new byte[4096 * ping.Length];
                    for (var offset = 0; offset < message.Length; offset += ping.Length)
                    {
                        ping.CopyTo(message, offset);
                    }
                    // Meanwhile the other session keeps serving (and stays under the fixture's 1.5 s idle timeout).
                    using var flooding = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                    var other = Task.Run(async () =>
                    {
                        while (!flooding.IsCancellationRequested)
                        {
                            await AssertEchoesAsync(before, timeout.Token);
                            await Task.Delay(250, flooding.Token).ContinueWith(_ => { });
                        }
                    });
                    try
                    {
                        for (var i = 0; i < 2000 && rogue.State == WebSocketState.Open; i++)
                        {
                            await rogue.SendAsync(message, WebSocketMessageType.Binary, true, timeout.Token);
                        }
                    }
                    finally
                    {
                        await flooding.CancelAsync();
                        await other;
                    }
                }
                catch (Exception e) when (e is WebSocketException or IOException)
                {
                    // The server may close (or abort) before the last byte is sent; the close below still tells why.
                }
                break;
        }

        var (code, reason) = await ReadCloseAsync(rogue, timeout.Token);
        if (name == "a flood of PINGs that never reads the PONGs" && code == 1006)
        {
            // A peer that never reads cannot receive the close frame either: it sits behind the unread PONGs, and the
            // server aborts the socket after its close-handshake timeout. The link still ended, and the node is healthy.
        }
        else
        {
            Assert.True(code == expectedCode, $"{name}: expected close {expectedCode}, got {code} '{reason}'");
            Assert.False(string.IsNullOrEmpty(reason));
        }

        await AssertEchoesAsync(before, timeout.Token);
        await fixture.AssertHealthyAsync();
    }

    [Fact]
    public async Task DATA_beyond_the_window_closes_the_link_with_1002_and_the_proxy_client_gets_an_abort()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var rogue = await ConnectRogueAsync("rogue-window", timeout.Token);
        // A proxy client asks for a stream; the rogue accepts it, then sends more than the 256 KiB initial window.
        var connect = ProxyClient.ConnectAsync(fixture.Node.ProxyPort, "127.0.0.1:9", ProxyClient.Basic("rogue-window"), timeout.Token);
        var open = await ReadUntilAsync(rogue, frame => frame[0] == (byte)FrameType.Open, timeout.Token);
        var id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(open.AsSpan(1));
        await rogue.SendAsync(Frame((byte)FrameType.OpenOk, id, []), WebSocketMessageType.Binary, true, timeout.Token);
        using var tunnel = await connect;
        Assert.Equal(200, tunnel.Status);
        // The node grants credit as its side consumes (into Kestrel's pipe and the socket buffers), so "beyond the
        // window" means beyond what it granted: keep sending without reading WINDOW frames until the link is closed.
        var chunk = Frame((byte)FrameType.Data, id, new byte[64 * 1024]);
        for (var i = 0; i < 512 && rogue.State == WebSocketState.Open; i++)
        {
            try
            {
                await rogue.SendAsync(chunk, WebSocketMessageType.Binary, true, timeout.Token);
            }
            catch (WebSocketException)
            {
                break; // closed under us: the close frame is already waiting to be read
            }
        }
        var (code, reason) = await ReadCloseAsync(rogue, timeout.Token);
        Assert.True(code == CloseCodes.ProtocolError, $"expected 1002, got {code} '{reason}'");
        // The proxy client's tunnel ends (it lost its link) instead of hanging.
        var buffer = new byte[64 * 1024];
        try
        {
            while (await tunnel.Stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
        }
        Assert.False(timeout.IsCancellationRequested);
        await fixture.AssertHealthyAsync();
    }

    private async Task<ClientWebSocket> ConnectRogueAsync(string session, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", "Bearer " + TestNode.Token);
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{fixture.Node.TunnelPort}/v1/tunnel?session={session}"), cancellationToken);
        return socket;
    }

    /// <summary>Reads messages (frames the server sends, e.g. PING) until the close frame; a dropped connection counts as 1006.</summary>
    private static async Task<(int Code, string? Reason)> ReadCloseAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[128 * 1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return ((int)result.CloseStatus!, result.CloseStatusDescription);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException)
        {
            return socket.CloseStatus is { } status ? ((int)status, socket.CloseStatusDescription) : (1006, null);
        }
    }

    private static async Task<byte[]> ReadUntilAsync(ClientWebSocket socket, Func<byte[], bool> match, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024 * 1024];
        while (true)
        {
            var length = 0;
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken) is var r ? new WebSocketReceiveResult(r.Count, r.MessageType, r.EndOfMessage) : null!;
                length += result.Count;
            }
            while (!result.EndOfMessage);
            for (var offset = 0; offset + 9 <= length;)
            {
                var payload = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(offset + 5));
                var frame = buffer.AsSpan(offset, 9 + payload).ToArray();
                if (match(frame))
                {
                    return frame;
                }
                offset += 9 + payload;
            }
        }
    }

    private async Task<ProxyClient.ConnectResult> OpenEchoAsync(CancellationToken cancellationToken)
    {
        var tunnel = await ProxyClient.ConnectAsync(fixture.Node.ProxyPort, $"127.0.0.1:{fixture.Targets.EchoPort}", ProxyClient.Basic(HardeningFixture.Session), cancellationToken);
        Assert.Equal(200, tunnel.Status);
        return tunnel;
    }

    private static async Task AssertEchoesAsync(ProxyClient.ConnectResult tunnel, CancellationToken cancellationToken)
    {
        var ping = "after-the-violation"u8.ToArray();
        await tunnel.Stream.WriteAsync(ping, cancellationToken);
        var back = new byte[ping.Length];
        await tunnel.Stream.ReadExactlyAsync(back, cancellationToken);
        Assert.Equal(ping, back);
    }
}
