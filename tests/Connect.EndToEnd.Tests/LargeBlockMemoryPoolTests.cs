using System.Net.WebSockets;
using Connect.Host.Configuration;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// The node's 32 KiB Kestrel block pool: one free list for every pool Kestrel creates (one per I/O queue per listener),
/// trimmed of the blocks no rent needed for a whole interval, and idle links that pin no block.
/// </summary>
public sealed class LargeBlockMemoryPoolTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    [Fact]
    public void Blocks_no_rent_needed_for_a_whole_interval_go_back_to_the_GC()
    {
        var time = new FakeTimeProvider();
        using var factory = new LargeBlockMemoryPoolFactory(time, Interval);
        using var pool = factory.Create();
        var burst = Enumerable.Range(0, 20).Select(_ => pool.Rent()).ToList();
        burst.ForEach(block => block.Dispose());
        Assert.Equal(20, factory.FreeBlocks);

        // The interval of the burst itself: every free block was needed in it, so none goes.
        time.Advance(Interval);
        Assert.Equal(20, factory.FreeBlocks);

        // A whole interval with no rent: all of them go back to the GC.
        time.Advance(Interval);
        Assert.Equal(0, factory.FreeBlocks);
        Assert.Equal(20, factory.Evicted);
    }

    [Fact]
    public void A_pool_in_steady_use_keeps_its_working_set_and_gives_back_only_its_peak_excess()
    {
        var time = new FakeTimeProvider();
        using var factory = new LargeBlockMemoryPoolFactory(time, Interval);
        using var pool = factory.Create();
        // A peak of 12 blocks once, then a steady 5 rented and returned every second.
        Enumerable.Range(0, 12).Select(_ => pool.Rent()).ToList().ForEach(block => block.Dispose());
        for (var second = 0; second < 30; second++)
        {
            Enumerable.Range(0, 5).Select(_ => pool.Rent()).ToList().ForEach(block => block.Dispose());
            time.Advance(TimeSpan.FromSeconds(1));
        }

        // The 7 blocks above the steady use went back; the 5 in use every second stayed, so nothing was allocated again.
        Assert.Equal(5, factory.FreeBlocks);
        Assert.Equal(7, factory.Evicted);
        Assert.Equal(12, factory.Allocated);
    }

    [Fact]
    public void At_most_MaxRetained_free_blocks_are_kept()
    {
        using var factory = new LargeBlockMemoryPoolFactory(timeProvider: null);
        using var pool = factory.Create();
        var burst = Enumerable.Range(0, LargeBlockMemoryPoolFactory.MaxRetained + 10).Select(_ => pool.Rent()).ToList();
        Assert.Equal(LargeBlockMemoryPoolFactory.MaxRetained + 10, factory.RentedBlocks);

        burst.ForEach(block => block.Dispose());

        Assert.Equal(LargeBlockMemoryPoolFactory.MaxRetained, factory.FreeBlocks);
        Assert.Equal(0, factory.RentedBlocks);
    }

    [Fact]
    public void Pools_of_one_factory_share_one_free_list()
    {
        using var factory = new LargeBlockMemoryPoolFactory(timeProvider: null);
        using var first = factory.Create();
        using var second = factory.Create();

        var block = first.Rent();
        var memory = block.Memory;
        block.Dispose();
        block.Dispose(); // a second dispose must not put the block into the free list twice
        using var again = second.Rent();

        Assert.Equal(LargeBlockMemoryPoolFactory.BlockSize, again.Memory.Length);
        Assert.True(again.Memory.Span == memory.Span, "the second pool reused the block the first one returned");
        Assert.Equal(1, factory.Allocated);
        Assert.Equal(0, factory.FreeBlocks);
        Assert.Throws<ArgumentOutOfRangeException>(() => second.Rent(LargeBlockMemoryPoolFactory.BlockSize + 1));
    }

    [Fact]
    public async Task Idle_links_hold_no_pool_block_and_an_idle_node_gives_every_block_back()
    {
        await using var node = await TestNode.StartAsync();
        var factory = node.Services.GetRequiredService<LargeBlockMemoryPoolFactory>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var sockets = new List<ClientWebSocket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var socket = new ClientWebSocket();
                socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
                socket.Options.SetRequestHeader("Authorization", "Bearer " + TestNode.Token);
                socket.Options.KeepAliveInterval = TimeSpan.Zero;
                await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{node.TunnelPort}/v1/tunnel?session=pool-{i}"), timeout.Token);
                sockets.Add(socket);
                // A PING in and a PONG out: the link has received and written through the pool once.
                await socket.SendAsync(FrameCodec.EncodePing(FrameType.Ping, (ulong)i), WebSocketMessageType.Binary, true, timeout.Token);
                var buffer = new byte[64];
                var reply = await socket.ReceiveAsync(buffer, timeout.Token);
                Assert.Equal(FrameType.Pong, (FrameType)buffer[0]);
                Assert.True(reply.Count > 0);
            }
            await Eventually.UntilAsync(() => node.Links.Count == 8, "8 links registered");
            Assert.True(factory.Allocated > 0, "the links' traffic went through the node's block pool");

            await Eventually.UntilAsync(() => factory.RentedBlocks == 0, $"no block rented while 8 links are idle ({factory.RentedBlocks} rented)");
            factory.Trim(); // the interval that saw the traffic
            factory.Trim(); // an idle one
            Assert.Equal(0, factory.FreeBlocks);
            Assert.Equal(8, node.Links.Count);
            Assert.All(sockets, socket => Assert.Equal(WebSocketState.Open, socket.State));
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Abort();
                socket.Dispose();
            }
        }
    }
}
