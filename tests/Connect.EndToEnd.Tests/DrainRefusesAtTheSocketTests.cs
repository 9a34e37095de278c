using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// How a load balancer sees a drain (issue 12, finding 1): the draining node keeps serving new connections while its
/// links drain and the grace runs, then closes its listening sockets so new connections are refused (ECONNREFUSED,
/// retryable anywhere), never accepted and reset; what it accepted before finishes.
/// </summary>
public sealed class DrainRefusesAtTheSocketTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task After_the_grace_new_connections_are_refused_at_the_socket_while_an_earlier_tunnel_completes()
    {
        await using var targets = await TestTargets.StartAsync();
        // The agent's link is on the holder; the draining node only proxies (its requests go to the holder's link).
        await using var holder = await TestNode.StartAsync();
        await using var draining = await TestNode.StartAsync(
            seeds: [holder.Address],
            settings: new Dictionary<string, string?> { ["Connect:Drain:ProxyGrace"] = "00:00:01.500", ["Connect:Drain:Deadline"] = "00:00:30" });
        await draining.WaitMembersUpAsync(2, Bound);
        await using var agent = await TestAgent.StartAsync("refuse-at-socket", [holder.TunnelUri]);
        var proxyPort = draining.ProxyPort;
        var tunnelPort = draining.TunnelPort;

        using var earlier = await ProxyClient.ConnectAsync(proxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic("refuse-at-socket"));
        Assert.Equal(200, earlier.Status);
        await EchoAsync(earlier, "before the drain");

        var drain = draining.Services.GetRequiredService<NodeLifecycle>().DrainAsync("test drain", CancellationToken.None);

        // During the grace a new connection is still accepted and served, and told to move on.
        using (var client = ProxyClient.Http(proxyPort, "refuse-at-socket"))
        {
            var response = await client.GetAsync($"http://127.0.0.1:{targets.HttpPort}/hello");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(response.Headers.ConnectionClose, "a draining node's response says Connection: close");
        }

        // After the grace the listening sockets are closed: the kernel refuses, nothing is accepted and then reset.
        await Eventually.UntilAsync(() => Refused(proxyPort), "the proxy port refusing connections", Bound);
        Assert.True(Refused(tunnelPort), "the tunnel port refuses connections too");
        Assert.False(drain.IsCompleted, "the drain waits for the tunnel accepted before");

        // The tunnel accepted before the drain still carries bytes both ways and ends cleanly; then the drain finishes.
        await EchoAsync(earlier, "after the listeners closed");
        earlier.Socket.Shutdown(SocketShutdown.Send);
        var rest = new byte[16];
        Assert.Equal(0, await earlier.Stream.ReadAsync(rest).AsTask().WaitAsync(Bound));
        await drain.WaitAsync(Bound);
    }

    /// <summary>True when a TCP connect to the port is refused (RST to the SYN), false when it is accepted.</summary>
    private static bool Refused(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
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
