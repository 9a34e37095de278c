using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Time.Testing;

namespace Connect.Tunnel.Tests;

/// <summary>
/// Keep-alive driven by one node-wide <see cref="MuxKeepAliveSweep"/> instead of a timer per link, on a fake clock:
/// the same PINGs, the same 4408 close after the same timeout, and a link that ends leaves the sweep.
/// </summary>
public class KeepAliveSweepTests
{
    public static TheoryData<TransportKind> Transports => new() { TransportKind.WebSocket, TransportKind.Stream };

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_swept_silent_peer_gets_pinged_and_then_closed_with_4408_and_leaves_the_sweep(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        await using var sweep = new MuxKeepAliveSweep(clock);
        var options = MuxPair.ServerOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, KeepAliveSweep = sweep };
        await using var link = await RawLink.StartAsync(kind, options);
        await Timeouts.UntilAsync(() => sweep.Count == 1, "the link to join the sweep");

        // Nothing before the link's interval has come round, however many sweeps pass.
        var sweeps = sweep.Sweeps;
        clock.Advance(Interval - sweep.Tick);
        await Timeouts.UntilAsync(() => sweep.Sweeps > sweeps, "a sweep before the interval");
        clock.Advance(sweep.Tick);
        var ping = await link.Raw.ExpectFrameAsync(FrameType.Ping);
        Assert.Equal(0u, ping.StreamId);
        Assert.Equal(1UL, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ping.Payload));
        Assert.Equal(Interval, clock.GetUtcNow() - clock.Start);

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
        Assert.StartsWith("nothing received for", info.Reason);
        Assert.True(clock.GetUtcNow() - clock.Start > Timeout);
        var code = await rawSaw.WaitAsync(Timeouts.Default);
        if (kind == TransportKind.WebSocket)
        {
            Assert.Equal(CloseCodes.KeepAliveTimeout, code);
        }
        Assert.Equal(0, sweep.Count);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Pongs_keep_a_swept_link_open_far_past_the_timeout_against_an_agent_on_its_own_timer(TransportKind kind)
    {
        var clock = new FakeTimeProvider();
        await using var sweep = new MuxKeepAliveSweep(clock);
        await using var link = await MuxPair.StartAsync(kind,
            agent: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock },
            server: o => o with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, KeepAliveSweep = sweep });
        var pingAndPong = 2 * (ProtocolLimits.HeaderSize + ProtocolLimits.PingPayloadSize);
        await Timeouts.UntilAsync(() => sweep.Count == 1, "the server's link to join the sweep");

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

        link.Server.Abort("test done");
        await Timeouts.UntilAsync(() => sweep.Count == 0, "the closed link to leave the sweep");
    }

    [Fact]
    public async Task One_sweep_pings_every_link_on_its_own_schedule()
    {
        var clock = new FakeTimeProvider();
        await using var sweep = new MuxKeepAliveSweep(clock);
        var options = MuxPair.ServerOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, KeepAliveSweep = sweep };
        await using var first = await RawLink.StartAsync(TransportKind.WebSocket, options);
        clock.Advance(TimeSpan.FromSeconds(5));
        await using var second = await RawLink.StartAsync(TransportKind.WebSocket, options);
        await Timeouts.UntilAsync(() => sweep.Count == 2, "both links to join the sweep");

        // At 15 s only the first link's interval has come round; at 20 s the second's.
        clock.Advance(TimeSpan.FromSeconds(10));
        await first.Raw.ExpectFrameAsync(FrameType.Ping);
        var secondPing = second.Raw.ExpectFrameAsync(FrameType.Ping);
        var sweeps = sweep.Sweeps;
        clock.Advance(TimeSpan.FromSeconds(4));
        await Timeouts.UntilAsync(() => sweep.Sweeps > sweeps, "a sweep at 19 s");
        Assert.False(secondPing.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1));
        await secondPing.WaitAsync(Timeouts.Default);

        first.Mux.Abort("test done");
        await Timeouts.UntilAsync(() => sweep.Count == 1, "the closed link to leave the sweep");
    }

    [Fact]
    public async Task A_tick_visits_only_the_links_whose_ping_is_due_not_every_link()
    {
        // Walking every link every second was 7 % of an idle node's CPU at 10,000 links: each tick now visits the links
        // due then, and nothing in between (before the wheel, 14 ticks would have visited 5 links 70 times).
        var clock = new FakeTimeProvider();
        await using var sweep = new MuxKeepAliveSweep(clock);
        var options = MuxPair.ServerOptions with { KeepAliveInterval = Interval, KeepAliveTimeout = Timeout, TimeProvider = clock, KeepAliveSweep = sweep };
        var links = new List<RawLink>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                links.Add(await RawLink.StartAsync(TransportKind.Stream, options));
            }
            await Timeouts.UntilAsync(() => sweep.Count == links.Count, "every link to join the sweep");

            for (var second = 1; second < Interval.TotalSeconds; second++)
            {
                var sweeps = sweep.Sweeps;
                clock.Advance(sweep.Tick);
                await Timeouts.UntilAsync(() => sweep.Sweeps > sweeps, $"the sweep at {second} s");
            }
            Assert.Equal(0, sweep.Visits);

            clock.Advance(sweep.Tick);
            foreach (var link in links)
            {
                await link.Raw.ExpectFrameAsync(FrameType.Ping);
            }
            await Timeouts.UntilAsync(() => sweep.Visits >= links.Count, "the walk at 15 s to count its visits");
            Assert.Equal(links.Count, sweep.Visits);
        }
        finally
        {
            foreach (var link in links)
            {
                await link.DisposeAsync();
            }
        }
    }
}
