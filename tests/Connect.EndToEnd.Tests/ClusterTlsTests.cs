using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Connect.Routing.NodeChannel;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// With a cluster certificate, Akka.Remote and the node data channel run over mutually authenticated TLS: nodes holding
/// the certificate form a cluster and carry a proxy request across nodes; a process without it (plain TCP, or TLS with
/// another certificate) can neither join the cluster nor open a data channel, even knowing the data secret.
/// </summary>
public sealed class ClusterTlsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>How long a refused joiner is given to (wrongly) become a member; joining over loopback takes ~1 s here.</summary>
    private static readonly TimeSpan JoinWindow = TimeSpan.FromSeconds(12);

    [Fact]
    public async Task Without_the_cluster_certificate_a_process_can_neither_join_nor_open_a_data_channel()
    {
        using var certificates = new SelfSignedCertificates();
        var (certPath, keyPath, _) = certificates.SelfSigned("cluster");
        var (_, _, other) = certificates.SelfSigned("not-the-cluster");
        var tls = new Dictionary<string, string?>
        {
            ["Connect:Cluster:Certificate:Path"] = certPath,
            ["Connect:Cluster:Certificate:KeyPath"] = keyPath,
        };
        await using var targets = await TestTargets.StartAsync();
        await using var nodeA = await TestNode.StartAsync(settings: tls);
        await using var nodeB = await TestNode.StartAsync(seeds: [nodeA.Address], settings: tls);
        await nodeA.WaitMembersUpAsync(2, Bound);

        // The certificate holders work: an agent on B, a proxy request through A crosses the TLS data channel.
        await using (var agent = await TestAgent.StartAsync("cluster-tls", [nodeB.TunnelUri]))
        {
            using var client = ProxyClient.Http(nodeA.ProxyPort, "cluster-tls");
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://127.0.0.1:{targets.HttpPort}/hello"));
        }

        // Akka.Remote: a plain joiner and a TLS joiner with another certificate are both kept out.
        var otherPfx = certificates.Pfx(other, "not-the-cluster", "pfx-password");
        using var plain = ActorSystem.Create("connect", JoinerConfig(nodeA.Address, ssl: null));
        using var impostor = ActorSystem.Create("connect", JoinerConfig(nodeA.Address, ssl: otherPfx));
        var plainUp = UpWithin(plain, JoinWindow);
        var impostorUp = UpWithin(impostor, JoinWindow);
        Assert.False(await plainUp, "a joiner without TLS became a member");
        Assert.False(await impostorUp, "a joiner with another certificate became a member");
        Assert.Equal(2, Akka.Cluster.Cluster.Get(nodeA.Services.GetRequiredService<ActorSystem>()).State.Members.Count);

        // The data channel: the right data secret is not enough without the certificate.
        var dataPort = nodeA.Services.GetRequiredService<NodeChannelServer>().Port;
        var secret = NodeChannelHandshake.SecretBytes(TestNode.DataSecret);
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, dataPort);
            await Assert.ThrowsAnyAsync<Exception>(() => NodeChannelHandshake.DialAsync(tcp.GetStream(), secret, CancellationToken.None).WaitAsync(Bound));
        }
        foreach (var clientCertificate in new[] { null, other })
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, dataPort);
            await using var ssl = new SslStream(tcp.GetStream());
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "127.0.0.1",
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                    LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
                });
                await NodeChannelHandshake.DialAsync(ssl, secret, CancellationToken.None).WaitAsync(Bound);
            });
        }
        // Node A only ever dialled B (the agent is on B), so any channel A's server holds would be a stranger's.
        Assert.Equal(0, nodeA.Services.GetRequiredService<NodeChannelServer>().ChannelCount);
    }

    private static async Task<bool> UpWithin(ActorSystem system, TimeSpan window)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
        var finished = await Task.WhenAny(up.Task, Task.Delay(window));
        return finished == up.Task;
    }

    private static Config JoinerConfig(string seed, string? ssl)
    {
        var tls = ssl is null ? "" : $$"""
            akka.remote.dot-netty.tcp.enable-ssl = true
            akka.remote.dot-netty.tcp.ssl {
              suppress-validation = true
              require-mutual-authentication = true
              certificate { path = "{{ssl}}", password = "pfx-password" }
            }
            """;
        return ConfigurationFactory.ParseString($$"""
            akka.loglevel = ERROR
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            akka.cluster.seed-nodes = ["{{seed}}"]
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            {{tls}}
            """);
    }
}
