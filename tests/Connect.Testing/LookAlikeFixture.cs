using Connect.Client;

namespace Connect.Testing;

/// <summary>
/// One node whose destination policy restricts "lookalike-*" sessions to <c>127.0.0.*:EchoPort</c>; a hosts file that
/// makes look-alike names resolve to 127.0.0.1 (read by agents through CONNECT_CLIENT_HOSTS_FILE); the real
/// connect-client process serving "allow-1" with <c>--allow 10.9.8.*:HttpPort,127.0.0.0/8:EchoPort</c>; and an
/// in-process agent serving "lookalike-1" that allows everything, so only the server's policy stands in the way.
/// </summary>
public sealed class LookAlikeFixture : IAsyncLifetime
{
    public const string AgentSession = "allow-1";
    public const string PolicedSession = "lookalike-1";

    public TestNode Node { get; private set; } = null!;

    public TestTargets Targets { get; private set; } = null!;

    public AgentProcess AgentProcess { get; private set; } = null!;

    public TestAgent PolicedAgent { get; private set; } = null!;

    public string HostsFile { get; } = Path.GetTempFileName();

    public async Task InitializeAsync()
    {
        Targets = await TestTargets.StartAsync();
        await File.WriteAllLinesAsync(HostsFile,
        [
            "127.0.0.1 10.9.8.7.evil.test 127.0.0.1.evil.test echo.test mixed.test",
            "10.9.8.7 mixed.test",
        ]);
        Node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:Proxy:Options:DestinationPolicy:0:Sessions"] = "lookalike-*",
            ["Connect:Proxy:Options:DestinationPolicy:0:Allow:0"] = $"127.0.0.*:{Targets.EchoPort}",
        });
        AgentProcess = await AgentProcess.StartAsync(
            ["--server", Node.TunnelUri.ToString(), "--session", AgentSession, "--allow", $"10.9.8.*:{Targets.HttpPort},127.0.0.0/8:{Targets.EchoPort}", "--status-interval", "0"],
            new Dictionary<string, string> { [AgentCommandLine.TokenVariable] = TestNode.Token, [AgentCommandLine.HostsFileVariable] = HostsFile });
        var resolver = HostsFileResolver.Load(HostsFile, SystemHostResolver.Instance);
        PolicedAgent = await TestAgent.StartAsync(PolicedSession, [Node.TunnelUri], allow: "*", configure: o => o with { Resolver = resolver });
    }

    public async Task DisposeAsync()
    {
        await PolicedAgent.DisposeAsync();
        await AgentProcess.DisposeAsync();
        await Node.DisposeAsync();
        await Targets.DisposeAsync();
        File.Delete(HostsFile);
    }
}
