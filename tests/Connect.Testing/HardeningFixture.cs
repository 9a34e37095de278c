namespace Connect.Testing;

/// <summary>
/// One node with tight limits for the hardening tests: a 2 s request-head timeout, a 1.5 s stream idle timeout, two
/// links per session, a server-side destination policy for "policed-*" sessions, and tokens bound to "team-a-*" and
/// "team-b-*" next to the all-sessions test token. An agent serves "e2e" (the health probe) and one serves "team-a-1".
/// </summary>
public sealed class HardeningFixture : IAsyncLifetime
{
    public const string Session = "e2e";
    public const string TokenA = "team-a-token-0123456789";
    public const string TokenB = "team-b-token-0123456789";
    public const string ProxyOnlyToken = "proxy-only-token-0123456789";

    public TestNode Node { get; private set; } = null!;

    public TestTargets Targets { get; private set; } = null!;

    public TestAgent Agent { get; private set; } = null!;

    public TestAgent AgentA { get; private set; } = null!;

    public LogCapture Logs { get; } = new();

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        Node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Trace",
            ["Logging:LogLevel:Akka"] = "Debug",
            ["Connect:Proxy:Options:RequestHeadTimeout"] = "00:00:02",
            ["Connect:Proxy:Options:StreamIdleTimeout"] = "00:00:01.500",
            ["Connect:Sessions:MaxLinksPerSession"] = "2",
            ["Connect:Proxy:Options:DestinationPolicy:0:Sessions"] = "policed-*",
            ["Connect:Proxy:Options:DestinationPolicy:0:Allow:0"] = $"127.0.0.1:{Targets.EchoPort}",
            ["Connect:Auth:Tokens:1:Name"] = "team-a",
            ["Connect:Auth:Tokens:1:Sha256"] = Connect.Host.Security.TokenStore.HashHex(TokenA),
            ["Connect:Auth:Tokens:1:Sessions:0"] = "team-a-*",
            ["Connect:Auth:Tokens:1:Scopes:0"] = "agent",
            ["Connect:Auth:Tokens:1:Scopes:1"] = "proxy",
            ["Connect:Auth:Tokens:2:Name"] = "team-b",
            ["Connect:Auth:Tokens:2:Token"] = TokenB,
            ["Connect:Auth:Tokens:2:Sessions:0"] = "team-b-*",
            ["Connect:Auth:Tokens:2:Scopes:0"] = "agent",
            ["Connect:Auth:Tokens:2:Scopes:1"] = "proxy",
            ["Connect:Auth:Tokens:3:Name"] = "proxy-only",
            ["Connect:Auth:Tokens:3:Token"] = ProxyOnlyToken,
            ["Connect:Auth:Tokens:3:Sessions:0"] = "*",
            ["Connect:Auth:Tokens:3:Scopes:0"] = "proxy",
        }, logs: Logs);
        Agent = await TestAgent.StartAsync(Session, [Node.TunnelUri]);
        AgentA = await TestAgent.StartAsync("team-a-1", [Node.TunnelUri], token: TokenA);
    }

    /// <summary>A fresh connection through the proxy still works: CONNECT to the echo target, bytes round-trip.</summary>
    public async Task AssertHealthyAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var tunnel = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(Session), timeout.Token);
        Assert.Equal(200, tunnel.Status);
        var ping = "still-healthy"u8.ToArray();
        await tunnel.Stream.WriteAsync(ping, timeout.Token);
        var back = new byte[ping.Length];
        await tunnel.Stream.ReadExactlyAsync(back, timeout.Token);
        Assert.Equal(ping, back);
    }

    public async Task DisposeAsync()
    {
        await AgentA.DisposeAsync();
        await Agent.DisposeAsync();
        await Node.DisposeAsync();
        await Targets.DisposeAsync();
    }
}
