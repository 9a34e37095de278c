using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Xunit.Abstractions;

namespace Connect.EndToEnd.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryCollection
{
    public const string Name = "memory: runs alone, so other tests' allocations do not blur the measurement";
}

/// <summary>An upload far larger than any buffer, to a target that reads slowly: memory stays bounded by the windows, not by the upload.</summary>
[Collection(MemoryCollection.Name)]
public sealed class MemoryBoundTests(ITestOutputHelper output)
{
    private const long UploadBytes = 1L << 30; // 1 GiB
    private const int SinkBytesPerSecond = 80 * 1024 * 1024;

    [Fact]
    public async Task A_1_GiB_upload_to_a_slow_target_keeps_managed_memory_growth_bounded_by_the_windows()
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        await using var agent = await TestAgent.StartAsync("memory", [node.TunnelUri]);

        // The slow target: reads at most SinkBytesPerSecond, so the sender is held back by credit, end to end.
        var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start();
        var sinkPort = ((IPEndPoint)sink.LocalEndpoint).Port;
        var received = Task.Run(async () =>
        {
            using var socket = await sink.AcceptSocketAsync();
            var buffer = new byte[64 * 1024];
            var clock = Stopwatch.StartNew();
            long total = 0;
            int read;
            while ((read = await socket.ReceiveAsync(buffer)) > 0)
            {
                total += read;
                var due = TimeSpan.FromSeconds((double)total / SinkBytesPerSecond) - clock.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due);
                }
            }
            return total;
        });

        using var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{sinkPort}", ProxyClient.Basic("memory"));
        Assert.Equal(200, tunnel.Status);

        // Warm up (JIT, pools) with the first 16 MiB, then take the baseline.
        var chunk = new byte[256 * 1024];
        long sent = 0;
        for (; sent < 16L * 1024 * 1024; sent += chunk.Length)
        {
            await tunnel.Stream.WriteAsync(chunk);
        }
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                // Live objects only (a full collection first): what the node holds, not garbage waiting for the next GC.
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
                await Task.Delay(200, sampling.Token).ContinueWith(_ => { });
            }
        });

        var clock = Stopwatch.StartNew();
        for (; sent < UploadBytes; sent += chunk.Length)
        {
            await tunnel.Stream.WriteAsync(chunk).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        }
        tunnel.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal(UploadBytes, await received.WaitAsync(TimeSpan.FromSeconds(120)));
        await sampling.CancelAsync();
        await sampler;
        sink.Stop();

        var growth = peak - baseline;
        output.WriteLine($"1 GiB uploaded in {clock.Elapsed.TotalSeconds:0.0} s; managed heap peak growth {growth / 1048576.0:0.0} MiB over a {baseline / 1048576.0:0.0} MiB baseline");
        // What may be in flight: the proxy-side stream's window and the agent-side stream's window (256 KiB each),
        // Kestrel's input pipe (1 MiB), the multiplexers' send blocks and receive segments, and arrays the shared
        // pool keeps. 64 windows (16 MiB) bounds all of that with room; without backpressure the growth would be
        // the upload itself (1 GiB).
        Assert.True(growth < 64L * ProtocolLimits.InitialWindow, $"managed memory grew by {growth / 1048576.0:0.0} MiB during a 1 GiB upload");
    }
}
