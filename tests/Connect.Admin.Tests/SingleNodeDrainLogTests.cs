using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.Admin.Tests;

/// <summary>A drain's first log line tells the truth when there is no other node to send agents to.</summary>
public sealed class SingleNodeDrainLogTests
{
    [Fact]
    public async Task A_single_nodes_drain_says_there_is_no_other_node_to_suggest()
    {
        var logs = new CapturingLoggerProvider();
        var settings = new Dictionary<string, string?> { ["Logging:LogLevel:Connect"] = "Information" };
        await using var node = await TestNode.StartAsync(settings: settings, configure: b => b.Logging.AddProvider(logs));
        await node.Services.GetRequiredService<NodeLifecycle>().DrainAsync("test", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));

        var started = Assert.Single(logs.Entries, e => e.EventId.Id == 3001);
        Assert.Contains("no other node to suggest", started.Message);
        Assert.DoesNotMatch("sent to: *$", started.Message);
    }
}
