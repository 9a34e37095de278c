using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Tests;

/// <summary>
/// Issue 11, finding 8: stream ids are u32 and only increase (+2 per OPEN). A multiplexer started near the end of the
/// id space (instead of after 2^31 opens) sends GOAWAY(StreamIdsExhausted) with its last OPEN, keeps that stream
/// working, refuses further opens as GoingAway, and closes with 1001 when its streams are done: never a 1002.
/// </summary>
public class StreamIdExhaustionTests
{
    public static TheoryData<TransportKind, bool> Cases => new()
    {
        { TransportKind.WebSocket, false }, // the server opens on an agent link (even ids)
        { TransportKind.Stream, true },     // the dialler opens on a node channel (odd ids)
    };

    private static async Task EchoOnceAsync(MuxStream stream, string text)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        await stream.WriteAsync(bytes);
        var back = new byte[bytes.Length];
        await stream.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(bytes, back);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_last_stream_id_goes_out_with_GOAWAY_and_the_link_closes_1001_when_its_streams_end(TransportKind kind, bool dialerOpens)
    {
        // Three ids left for the opening side: N-4, N-2, N (N = the last id of its parity).
        var last = dialerOpens ? ProtocolLimits.LastStreamId : ProtocolLimits.LastStreamId - 1;
        var (dialerEnd, acceptedEnd) = await Loopback.TransportPairAsync(kind);
        var dialer = new TunnelMux(dialerEnd, new MuxOptions { IsDialer = true, AcceptInboundStreams = !dialerOpens, KeepAliveInterval = TimeSpan.Zero, FirstLocalStreamId = dialerOpens ? last - 4 : null });
        var accepted = new TunnelMux(acceptedEnd, new MuxOptions { IsDialer = false, AcceptInboundStreams = dialerOpens, KeepAliveInterval = TimeSpan.Zero, FirstLocalStreamId = dialerOpens ? null : last - 4 });
        var (opener, receiver) = dialerOpens ? (dialer, accepted) : (accepted, dialer);
        var goAway = new TaskCompletionSource<GoAwayInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.GoAwayReceived += info => goAway.TrySetResult(info);
        var receiverRun = receiver.RunAsync(incoming =>
        {
            var stream = incoming.Accept();
            _ = Task.Run(async () =>
            {
                var buffer = new byte[1024];
                int read;
                try
                {
                    while ((read = await stream.ReadAsync(buffer)) > 0)
                    {
                        await stream.WriteAsync(buffer.AsMemory(0, read));
                    }
                    await stream.CompleteWritesAsync();
                }
                catch (StreamResetException)
                {
                }
            });
        });
        var openerRun = opener.RunAsync();
        try
        {
            await RunAsync(opener, receiver, openerRun, receiverRun, goAway.Task, last);
        }
        finally
        {
            dialer.Abort("test over");
            accepted.Abort("test over");
        }
    }

    private static async Task RunAsync(TunnelMux opener, TunnelMux receiver, Task<LinkCloseInfo> openerRun, Task<LinkCloseInfo> receiverRun, Task<GoAwayInfo> goAway, uint last)
    {
        var streams = new List<MuxStream>();
        for (var i = 0; i < 3; i++)
        {
            var stream = await opener.OpenStreamAsync($"echo-{i}").WaitAsync(Timeouts.Default);
            Assert.Equal(last - 4 + (uint)(2 * i), stream.Id);
            await EchoOnceAsync(stream, $"ping-{i}");
            streams.Add(stream);
        }

        var info = await goAway.WaitAsync(Timeouts.Default);
        Assert.Equal(GoAwayCode.StreamIdsExhausted, info.Code);
        Assert.True(opener.IsGoingAway);
        var refused = await Assert.ThrowsAsync<StreamOpenException>(() => opener.OpenStreamAsync("echo-late"));
        Assert.Equal(OpenErrorCode.GoingAway, refused.Code);

        // The streams opened before (including the one with the last id) keep working.
        foreach (var stream in streams)
        {
            await EchoOnceAsync(stream, "still-works");
        }
        Assert.False(opener.IsClosed);

        foreach (var stream in streams)
        {
            await stream.CompleteWritesAsync();
            await stream.DisposeAsync();
        }
        var closed = await openerRun.WaitAsync(Timeouts.Default);
        Assert.Equal(CloseCodes.GoingAway, closed.Code);
        Assert.Contains("stream ids exhausted", closed.Reason);
        // The peer sees an orderly close (a node channel carries no close code, only the end of the stream), never 1002.
        var seen = await receiverRun.WaitAsync(Timeouts.Default);
        Assert.Contains(seen.Code, new[] { CloseCodes.Normal, CloseCodes.GoingAway });
        Assert.True(receiver.IsClosed);
    }

    [Fact]
    public async Task A_first_stream_id_of_the_wrong_parity_is_refused()
    {
        var (dialer, _) = await Loopback.TransportPairAsync(TransportKind.Stream);
        var e = Assert.Throws<ArgumentException>(() => new TunnelMux(dialer, MuxPair.AgentOptions with { FirstLocalStreamId = 2 }));
        Assert.Contains("wrong parity", e.Message);
    }

    [Theory]
    [InlineData(TransportKind.WebSocket)]
    [InlineData(TransportKind.Stream)]
    public async Task A_late_frame_for_an_ended_stream_after_the_last_id_is_dropped_not_a_1002(TransportKind kind)
    {
        // Server side of an agent link with two ids left: N-2 and N (even).
        var last = ProtocolLimits.LastStreamId - 1;
        await using var link = await RawLink.StartAsync(kind, MuxPair.ServerOptions with { FirstLocalStreamId = last - 2 });

        var first = link.Mux.OpenStreamAsync("a:1");
        Assert.Equal(last - 2, (await link.Raw.ExpectFrameAsync(FrameType.Open)).StreamId);
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.OpenOk, last - 2, []));
        var a = await first.WaitAsync(Timeouts.Default);

        var second = link.Mux.OpenStreamAsync("b:1");
        Assert.Equal(last, (await link.Raw.ExpectFrameAsync(FrameType.Open)).StreamId);
        Assert.Equal(GoAwayCode.StreamIdsExhausted, FrameCodec.ReadGoAway((await link.Raw.ExpectFrameAsync(FrameType.GoAway)).Payload).Code);
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.OpenOk, last, []));
        var b = await second.WaitAsync(Timeouts.Default);

        // Stream a ends here while the peer's FIN for it is in flight: the FIN must be dropped as for any ended
        // stream (before the fix the id counter had wrapped, so the id looked never opened: 1002).
        a.Reset(ResetCode.Cancel, "done with it");
        Assert.Equal(last - 2, (await link.Raw.ExpectFrameAsync(FrameType.Rst)).StreamId);
        await link.Raw.SendAsync(FrameCodec.Encode(FrameType.Fin, last - 2, []));
        await link.Raw.SendAsync(FrameCodec.EncodePing(FrameType.Ping, 42));
        Assert.Equal(42ul, FrameCodec.ReadPing((await link.Raw.ExpectFrameAsync(FrameType.Pong)).Payload));
        Assert.False(link.Mux.IsClosed);

        // The last stream ends: the link retires with 1001.
        b.Reset(ResetCode.Cancel, "done");
        var info = await link.ExpectClosedAsync(CloseCodes.GoingAway);
        Assert.Contains("stream ids exhausted", info.Reason);
    }
}
