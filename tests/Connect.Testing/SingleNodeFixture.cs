namespace Connect.Testing;

/// <summary>One node, the private apps, and one agent attached for session "e2e", shared by a test class.</summary>
public sealed class SingleNodeFixture : IAsyncLifetime
{
    public const string Session = "e2e";

    public TestNode Node { get; private set; } = null!;

    public TestTargets Targets { get; private set; } = null!;

    public TestAgent Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        Node = await TestNode.StartAsync();
        Agent = await TestAgent.StartAsync(Session, [Node.TunnelUri]);
    }

    public async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Node.DisposeAsync();
        await Targets.DisposeAsync();
    }
}
