using Connect.Testing;

namespace Connect.Cluster.Tests;

/// <summary>Three real nodes in this process (Kestrel and Akka on loopback ports) forming one cluster, plus the private apps.</summary>
public sealed class ThreeNodeCluster : IAsyncLifetime
{
    public TestNode[] Nodes { get; private set; } = [];

    public TestTargets Targets { get; private set; } = null!;

    public TestNode this[int number] => Nodes[number - 1];

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        Nodes = await StartAsync(3);
    }

    public static async Task<TestNode[]> StartAsync(int count, IDictionary<string, string?>? settings = null)
    {
        var first = await TestNode.StartAsync(settings: settings);
        var rest = await Task.WhenAll(Enumerable.Range(1, count - 1).Select(_ => TestNode.StartAsync(seeds: [first.Address], settings: settings)));
        var nodes = new[] { first }.Concat(rest).ToArray();
        await Task.WhenAll(nodes.Select(n => n.WaitMembersUpAsync(count, TimeSpan.FromSeconds(30))));
        return nodes;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in Nodes.Reverse())
        {
            await node.DisposeAsync();
        }
        await Targets.DisposeAsync();
    }
}
