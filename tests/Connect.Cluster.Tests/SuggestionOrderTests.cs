using Connect.Host.Draining;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// GOAWAY suggestions name the newest member first. In a surge roll (the replacement joins, then the oldest node drains)
/// an agent sent to an old node is sent away again when that node's turn comes; sent to the newest it moves once.
/// </summary>
public sealed class SuggestionOrderTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_draining_node_suggests_the_newest_member_first()
    {
        // Akka orders members by address; give the newest node the highest cluster port so that address order would
        // put it last: only age order puts it first.
        var clusterPorts = Enumerable.Range(0, 3).Select(_ => FreePorts.Next()).Order().ToArray();
        Dictionary<string, string?> Port(int i) => new() { ["Connect:Cluster:Port"] = clusterPorts[i].ToString() };
        await using var oldest = await TestNode.StartAsync(settings: Port(0), tunnelPort: FreePorts.Next());
        await using var middle = await TestNode.StartAsync(seeds: [oldest.Address], settings: Port(1), tunnelPort: FreePorts.Next());
        await middle.WaitMembersUpAsync(2, Bound);
        await using var newest = await TestNode.StartAsync(seeds: [oldest.Address], settings: Port(2), tunnelPort: FreePorts.Next());
        await oldest.WaitMembersUpAsync(3, Bound);

        var lifecycle = oldest.Services.GetRequiredService<NodeLifecycle>();
        await lifecycle.RefreshSuggestionsAsync(CancellationToken.None);
        var suggested = lifecycle.SuggestedServers();
        output.WriteLine($"oldest {oldest.Address}, middle {middle.Address}, newest {newest.Address}; suggested: {string.Join(", ", suggested)}");

        Assert.Equal([$"ws://127.0.0.1:{newest.TunnelPort}", $"ws://127.0.0.1:{middle.TunnelPort}"], suggested);
    }
}
