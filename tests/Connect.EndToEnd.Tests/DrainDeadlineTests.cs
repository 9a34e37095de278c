using System.Net.Sockets;
using System.Text;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>A stream that outlives the drain deadline is reset at the deadline: not earlier, not never; counted and logged by session.</summary>
public sealed class DrainDeadlineTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_stream_that_outlives_the_drain_deadline_is_reset_at_the_deadline_and_logged_for_its_session()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CapturingLoggerProvider();
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync(
            settings: new Dictionary<string, string?> { ["Connect:Drain:Deadline"] = "00:00:10", ["Connect:Drain:ProxyGrace"] = "00:00:00" },
            configure: builder =>
            {
                // The drain's clock is a fake one the test moves; everything else runs on real time.
                builder.Services.AddSingleton<TimeProvider>(time);
                builder.Logging.AddProvider(logs);
            });
        await using var agent = await TestAgent.StartAsync("outlives", [node.TunnelUri]);
        using var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic("outlives"));
        Assert.Equal(200, tunnel.Status);
        await EchoAsync(tunnel, "before the drain");

        var lifecycle = node.Services.GetRequiredService<NodeLifecycle>();
        var drain = lifecycle.DrainAsync("test drain", CancellationToken.None);
        await Eventually.UntilAsync(() => agent.Agent.Links.All(l => l.Mux.IsGoingAway), "the agent's links receiving GOAWAY", Bound);

        // Just before the deadline the stream is untouched: the busy link waits for it.
        time.Advance(TimeSpan.FromSeconds(9.9));
        await EchoAsync(tunnel, "still open at 9.9 s");
        Assert.False(drain.IsCompleted);
        Assert.Equal(0, lifecycle.StreamsResetAtDeadline);

        // At the deadline it is reset: the client's connection ends, the counter moves, the log names the session.
        time.Advance(TimeSpan.FromSeconds(0.2));
        await drain.WaitAsync(Bound);
        var buffer = new byte[16];
        var ended = await ReadEndAsync(tunnel.Stream, buffer).WaitAsync(Bound);
        Assert.True(ended);
        Assert.Equal(1, lifecycle.StreamsResetAtDeadline);
        var line = Assert.Single(logs.Entries, e => e.EventId.Id == 3003);
        Assert.Equal("outlives", line.State["SessionId"]);
        Assert.Contains("reset at the drain deadline", line.Message);
        Assert.Equal(LogLevel.Warning, line.Level);
    }

    private static async Task<bool> ReadEndAsync(NetworkStream stream, byte[] buffer)
    {
        try
        {
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
            return true;
        }
        catch (IOException)
        {
            return true; // reset rather than FIN: the connection still ended
        }
    }

    private static async Task EchoAsync(ProxyClient.ConnectResult tunnel, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        await tunnel.Stream.WriteAsync(bytes);
        var echoed = new byte[bytes.Length];
        await tunnel.Stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Bound);
        Assert.Equal(text, Encoding.ASCII.GetString(echoed));
    }
}
