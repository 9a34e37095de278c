using Connect.Routing.NodeChannel;
using Connect.Routing.Security;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Issue 11, finding 8, over a real node channel: a pool whose channels start their stream ids three short of the
/// end keeps opening streams across channel after channel. Each channel sends GOAWAY with its last id, the next
/// open dials a fresh one, and the old one closes with 1001 when its stream is done; nothing closes with 1002.
/// </summary>
public sealed class NodeChannelIdExhaustionTests
{
    [Fact]
    public async Task Opens_keep_working_across_channels_whose_stream_ids_run_out()
    {
        await using var targets = await TestTargets.StartAsync();
        var nodeLogs = new LogCapture();
        await using var node = await TestNode.StartAsync(logs: nodeLogs);
        await using var agent = await TestAgent.StartAsync("ids-1", [node.TunnelUri]);
        var link = node.Links.All.Single(l => l.SessionId == "ids-1");

        var poolLogs = new LogCapture();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(poolLogs));
        await using var pool = new NodeChannelPool(node.Services.GetRequiredService<NodeChannelSecret>(), node.Services.GetRequiredService<ClusterTls>(), loggers.CreateLogger<NodeChannelPool>())
        {
            ChannelOptions = NodeChannelSockets.MuxOptions(isDialer: true) with { FirstLocalStreamId = ProtocolLimits.LastStreamId - 4 },
        };

        // Three ids per channel: opens 1-3 on the first, 4-6 on a second, 7 on a third.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        for (var i = 0; i < 7; i++)
        {
            await using var stream = await pool.OpenAsync(node.Identity.DataEndpoint, link.LinkId, $"127.0.0.1:{targets.EchoPort}", timeout.Token);
            var ping = System.Text.Encoding.ASCII.GetBytes($"open-{i}");
            await stream.WriteAsync(ping, timeout.Token);
            var back = new byte[ping.Length];
            await stream.ReadExactlyAsync(back, timeout.Token);
            Assert.Equal(ping, back);
            await stream.CompleteWritesAsync();
        }

        await Eventually.UntilAsync(() => poolLogs.Lines.Count(l => l.Contains("closed: 1001") && l.Contains("stream ids exhausted")) >= 2, "two exhausted channels closed with 1001", TimeSpan.FromSeconds(30));
        Assert.Equal(3, poolLogs.Lines.Count(l => l.Contains("[4011]")));
        Assert.DoesNotContain(poolLogs.Lines, l => l.Contains("1002"));
        Assert.DoesNotContain(nodeLogs.Lines, l => l.Contains("1002") || l.Contains("ProtocolError"));
        Assert.Equal(7, agent.Agent.StreamsServed);
    }
}
