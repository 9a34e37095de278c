using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Time.Testing;

namespace Connect.Tunnel.Tests;

/// <summary>Keep-alive on a fake clock: PINGs go out every interval; silence longer than the timeout closes the link with 4408.</summary>
public class KeepAliveTests
{
    public static TheoryData<TransportKind> Transports => new() { TransportKind.WebSocket, TransportKind.Stream };

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_silent_peer_gets_pinged_and_then_closed_with_4408(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        var options = MuxPair.ServerOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock };
        await using var link = await RawLink.StartAsync(kind, options);

        clock.Advance(Interval);
        var ping = await link.Raw.ExpectFrameAsync(FrameType.Ping);
        Assert.Equal(0u, ping.StreamId);

        // The raw peer reads but never answers; the clock moves on until the link gives up.
        var rawSaw = link.Raw.ExpectCloseAsync();
        await Timeouts.UntilAsync(() =>
        {
            if (link.Run.IsCompleted)
            {
                return true;
            }
            clock.Advance(Interval);
            return false;
        }, "the keep-alive timeout to close the link");

        var info = await link.ExpectClosedAsync(CloseCodes.KeepAliveTimeout);
        Assert.False(info.ByPeer);
        Assert.True(clock.GetUtcNow() - clock.Start > Timeout);
        var code = await rawSaw.WaitAsync(Timeouts.Default);
        if (kind == TransportKind.WebSocket)
        {
            Assert.Equal(CloseCodes.KeepAliveTimeout, code);
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_silent_link_with_an_open_stream_resets_the_stream_as_link_lost(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        var options = MuxPair.AgentOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock };
        var accepted = new TaskCompletionSource<MuxStream>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var link = await RawLink.StartAsync(kind, options, incoming => accepted.TrySetResult(incoming.Accept()));
        await link.Raw.SendAsync(FrameCodec.EncodeOpen(2, "db:1"));
        await link.Raw.ExpectFrameAsync(FrameType.OpenOk);
        var stream = await accepted.Task.WaitAsync(Timeouts.Default);
        var blockedRead = stream.ReadAsync(new byte[1]).AsTask();

        var rawSaw = link.Raw.ExpectCloseAsync();
        await Timeouts.UntilAsync(() =>
        {
            if (link.Run.IsCompleted)
            {
                return true;
            }
            clock.Advance(Interval);
            return false;
        }, "the keep-alive timeout to close the link");

        await link.ExpectClosedAsync(CloseCodes.KeepAliveTimeout);
        var reset = await Assert.ThrowsAsync<StreamResetException>(() => blockedRead.WaitAsync(Timeouts.Default));
        Assert.Equal(ResetCode.LinkLost, reset.Code);
        await rawSaw.WaitAsync(Timeouts.Default);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Pongs_keep_an_idle_link_open_far_past_the_timeout(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        await using var link = await MuxPair.StartAsync(kind,
            agent: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock },
            server: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock });
        var pingAndPong = 2 * (ProtocolLimits.HeaderSize + ProtocolLimits.PingPayloadSize);

        for (var tick = 1; tick <= 12; tick++) // three minutes of fake time, four times the timeout
        {
            var agentIn = link.Agent.BytesIn;
            var serverIn = link.Server.BytesIn;
            clock.Advance(Interval);
            // Each side pings and answers the other's ping; wait until both PING and PONG arrived on both ends.
            await Timeouts.UntilAsync(() => link.Agent.BytesIn >= agentIn + pingAndPong && link.Server.BytesIn >= serverIn + pingAndPong, $"keep-alive round {tick}");
        }

        Assert.False(link.Agent.IsClosed);
        Assert.False(link.Server.IsClosed);
        await using var stream = await link.Server.OpenStreamAsync("echo").WaitAsync(Timeouts.Default);
        await stream.WriteAsync(new byte[] { 5 });
        await stream.CompleteWritesAsync();
        Assert.Equal(5, stream.ReadByte());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_side_that_skips_its_pings_while_the_peer_pings_keeps_the_link_open_with_half_the_frames(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        await using var link = await MuxPair.StartAsync(kind,
            agent: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock },
            server: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, SkipPingWhilePeerPings = true });
        var frame = ProtocolLimits.HeaderSize + ProtocolLimits.PingPayloadSize;

        for (var tick = 1; tick <= 12; tick++) // three minutes of fake time, four times the timeout
        {
            var agentIn = link.Agent.BytesIn;
            var serverIn = link.Server.BytesIn;
            clock.Advance(Interval);
            // The agent's PING reaches the server and the server's PONG the agent: each side hears from the other.
            await Timeouts.UntilAsync(() => link.Agent.BytesIn >= agentIn + frame && link.Server.BytesIn >= serverIn + frame, $"keep-alive round {tick}");
            await Timeouts.UntilAsync(() => link.Server.Pings.Sent + link.Server.Pings.Skipped == tick, $"the server's beat {tick}");
        }

        Assert.False(link.Agent.IsClosed);
        Assert.False(link.Server.IsClosed);
        // Only the first beat can find no PING from the agent yet (both beat at the same fake instant).
        Assert.InRange(link.Server.Pings.Sent, 0, 1);
        Assert.Equal(12, link.Agent.Pings.Sent);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_side_that_skips_its_pings_while_the_peer_pings_still_pings_and_closes_a_peer_that_never_pings(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        var options = MuxPair.ServerOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, SkipPingWhilePeerPings = true };
        await using var link = await RawLink.StartAsync(kind, options);

        clock.Advance(Interval);
        await link.Raw.ExpectFrameAsync(FrameType.Ping);

        await Timeouts.UntilAsync(() =>
        {
            if (link.Run.IsCompleted)
            {
                return true;
            }
            clock.Advance(Interval);
            return false;
        }, "the keep-alive timeout to close the link");
        await link.ExpectClosedAsync(CloseCodes.KeepAliveTimeout);
        Assert.Equal(0, link.Mux.Pings.Skipped);
    }
}
