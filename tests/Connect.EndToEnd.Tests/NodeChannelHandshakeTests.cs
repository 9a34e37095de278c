using System.Net.Sockets;
using Connect.EndToEnd.Tests.Support;
using Connect.Host.NodeChannel;
using Connect.Host.Tunnels;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>The node-to-node data port answers only peers that know the cluster's data secret.</summary>
public sealed class NodeChannelHandshakeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_peer_with_the_wrong_secret_is_refused_and_the_right_secret_is_accepted()
    {
        await using var node = await TestNode.StartAsync();
        var endpoint = node.Services.GetRequiredService<NodeIdentity>().DataEndpoint;
        var port = int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..]);

        using (var stranger = new TcpClient())
        {
            await stranger.ConnectAsync("127.0.0.1", port);
            var refused = await Assert.ThrowsAsync<IOException>(() =>
                NodeChannelHandshake.DialAsync(stranger.GetStream(), NodeChannelHandshake.SecretBytes("not-the-cluster-secret"), CancellationToken.None).WaitAsync(Bound));
            Assert.Contains("refused the data channel handshake", refused.Message);
        }

        using var peer = new TcpClient();
        await peer.ConnectAsync("127.0.0.1", port);
        await NodeChannelHandshake.DialAsync(peer.GetStream(), NodeChannelHandshake.SecretBytes("test-data-secret"), CancellationToken.None).WaitAsync(Bound);
    }
}
