using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// --ca-file as operators use it: the file holds the root, the server sends its intermediate, and only a certificate
/// made for server authentication is accepted.
/// </summary>
public sealed class AgentCaFileTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_agent_trusting_the_root_accepts_a_server_that_sends_its_intermediate()
    {
        using var pki = new TestCertificates();
        using var certificate = pki.Server(byIntermediate: true);
        await using var server = await TinyTunnelServer.StartAsync(certificate, [pki.Intermediate]);
        await using var agent = await TestAgent.StartAsync("chained", [server.Uri], waitConnected: false, configure: o => o with { CaFile = pki.RootFile });

        await Eventually.UntilAsync(() => agent.Agent.Links.Count == 1 || agent.Log.Any(l => l.Contains("not trusted")), "a link or a refusal", Bound);
        Assert.DoesNotContain(agent.Log, l => l.Contains("not trusted"));
        Assert.Single(agent.Agent.Links);
        Assert.Equal(1, server.Links);
    }

    [Fact]
    public async Task A_node_whose_certificate_file_holds_the_intermediate_sends_it_and_an_agent_trusting_the_root_connects()
    {
        using var pki = new TestCertificates();
        var (certificate, key) = pki.ServerPemFiles(byIntermediate: true);
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Certificate:Path"] = certificate,
            ["Connect:Tunnel:Certificate:KeyPath"] = key,
        });
        var wss = new Uri($"wss://127.0.0.1:{node.TunnelPort}/v1/tunnel");
        await using var agent = await TestAgent.StartAsync("node-chain", [wss], waitConnected: false, configure: o => o with { CaFile = pki.RootFile });

        await Eventually.UntilAsync(() => agent.Agent.Links.Count == 1 || agent.Log.Any(l => l.Contains("not trusted")), "a link or a refusal", Bound);
        Assert.DoesNotContain(agent.Log, l => l.Contains("not trusted"));
        Assert.Single(agent.Agent.Links);
    }

    [Fact]
    public async Task An_agent_refuses_a_certificate_from_its_CA_that_is_not_made_for_server_authentication()
    {
        using var pki = new TestCertificates();
        // Issued by the root itself, so the chain builds: only the usage is wrong.
        using var certificate = pki.Server(byIntermediate: false, TestCertificates.ClientAuth);
        await using var server = await TinyTunnelServer.StartAsync(certificate, []);
        await using var agent = await TestAgent.StartAsync("client-cert", [server.Uri], waitConnected: false, configure: o => o with { CaFile = pki.RootFile });

        await Eventually.UntilAsync(() => agent.Log.Count(l => l.Contains("TLS certificate is not trusted")) >= 2, "two refusals of the certificate", Bound);
        Assert.Empty(agent.Agent.Links);
        Assert.Equal(0, server.Links);
        Assert.False(agent.Run.IsCompleted);
    }
}
