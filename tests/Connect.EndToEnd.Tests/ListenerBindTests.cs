using System.Net;
using System.Net.Sockets;
using Connect.Routing.NodeChannel;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Public and private listeners bind apart: proxy and tunnel on the public address, Akka.Remote and the node data
/// channel on the private one, the admin API on loopback. Before, one BindAddress served all five, so whoever reached
/// the proxy port could also reach 7090 and join the cluster.
/// </summary>
public sealed class ListenerBindTests
{
    private static readonly IPAddress Public = IPAddress.Parse("127.0.0.2");
    private static readonly IPAddress Private = IPAddress.Parse("127.0.0.3");
    private static readonly IPAddress AdminDefault = IPAddress.Loopback;

    private static async Task<bool> AcceptsAsync(IPAddress address, int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await socket.ConnectAsync(address, port, timeout.Token);
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_node_with_public_bind_127_0_0_2_and_cluster_bind_127_0_0_3_listens_where_it_should_and_not_elsewhere()
    {
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:PublicBind"] = Public.ToString(),
            ["Connect:Cluster:Bind"] = Private.ToString(),
        });
        var akkaPort = Akka.Cluster.Cluster.Get(node.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress.Port!.Value;
        var dataPort = node.Services.GetRequiredService<NodeChannelServer>().Port;

        var expected = new (string Name, int Port, IPAddress Where)[]
        {
            ("tunnel", node.TunnelPort, Public),
            ("proxy", node.ProxyPort, Public),
            ("akka.remote", akkaPort, Private),
            ("data channel", dataPort, Private),
            ("admin", node.AdminPort, AdminDefault),
        };
        foreach (var (name, port, where) in expected)
        {
            foreach (var address in new[] { Public, Private, AdminDefault })
            {
                Assert.True(await AcceptsAsync(address, port) == address.Equals(where), $"{name} port {port} on {address}: expected {(address.Equals(where) ? "accepting" : "refused")}");
            }
        }

        // What the node tells others matches: the cluster address and data endpoint are private, the agents' URL public.
        Assert.Equal($"akka.tcp://connect@{Private}:{akkaPort}", node.Address);
        Assert.Equal($"{Private}:{dataPort}", node.Identity.DataEndpoint);
        Assert.Equal($"ws://{Public}:{node.TunnelPort}", node.Identity.TunnelUrl);
        Assert.Equal($"http://{AdminDefault}:{node.AdminPort}", node.Identity.AdminUrl);
    }
}
