using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Connect.Host.Tunnels;
using Connect.Routing.NodeChannel;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// The node-to-node data port answers only peers that know the cluster's data secret, the dialer checks that the
/// listener knows it too, and strangers cannot pile up unauthenticated connections.
/// </summary>
public sealed class NodeChannelHandshakeTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static int DataPort(TestNode node)
    {
        var endpoint = node.Services.GetRequiredService<NodeIdentity>().DataEndpoint;
        return int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..]);
    }

    [Fact]
    public async Task A_peer_with_the_wrong_secret_is_refused_and_the_right_secret_is_accepted()
    {
        await using var node = await TestNode.StartAsync();
        var port = DataPort(node);

        using (var stranger = new TcpClient())
        {
            await stranger.ConnectAsync("127.0.0.1", port);
            var refused = await Assert.ThrowsAsync<IOException>(() =>
                NodeChannelHandshake.DialAsync(stranger.GetStream(), NodeChannelHandshake.SecretBytes("not-the-cluster-secret"), CancellationToken.None).WaitAsync(Bound));
            Assert.Contains("refused the data channel handshake", refused.Message);
        }

        using var peer = new TcpClient();
        await peer.ConnectAsync("127.0.0.1", port);
        await NodeChannelHandshake.DialAsync(peer.GetStream(), NodeChannelHandshake.SecretBytes(TestNode.DataSecret), CancellationToken.None).WaitAsync(Bound);
    }

    /// <summary>A listener that accepts every answer without knowing the secret (what the one-way handshake let a fake node do).</summary>
    private static async Task FakeListenerAsync(TcpListener listener, bool sendsProof)
    {
        using var socket = await listener.AcceptSocketAsync();
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(RandomNumberGenerator.GetBytes(NodeChannelHandshake.NonceSize));
        var answer = new byte[NodeChannelHandshake.NonceSize + NodeChannelHandshake.ProofSize];
        await stream.ReadExactlyAsync(answer);
        await stream.WriteAsync(new[] { NodeChannelHandshake.Accepted });
        if (sendsProof)
        {
            await stream.WriteAsync(RandomNumberGenerator.GetBytes(NodeChannelHandshake.ProofSize));
        }
        socket.Shutdown(SocketShutdown.Send);
        // Hold the socket until the dialer has decided (it closes: end of stream or a reset).
        try
        {
            _ = await stream.ReadAsync(new byte[1]);
        }
        catch (IOException)
        {
            // The dialer reset the connection: decided.
        }
    }

    [Theory]
    [InlineData(true, "could not prove")]
    [InlineData(false, "without proving")]
    public async Task A_fake_listener_that_cannot_prove_the_secret_is_refused_by_the_dialer(bool sendsProof, string expected)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var fake = FakeListenerAsync(listener, sendsProof);
            using var dialer = new TcpClient();
            await dialer.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            var refused = await Assert.ThrowsAsync<IOException>(() =>
                NodeChannelHandshake.DialAsync(dialer.GetStream(), NodeChannelHandshake.SecretBytes(TestNode.DataSecret), CancellationToken.None).WaitAsync(Bound));
            Assert.Contains(expected, refused.Message);
            dialer.Close();
            await fake.WaitAsync(Bound);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Both_sides_derive_one_key_per_connection_from_both_nonces()
    {
        var secret = NodeChannelHandshake.SecretBytes(TestNode.DataSecret);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var keys = new List<(byte[] Listener, byte[] Dialer)>();
            for (var i = 0; i < 2; i++)
            {
                var accepting = Task.Run(async () =>
                {
                    using var socket = await listener.AcceptSocketAsync();
                    await using var stream = new NetworkStream(socket);
                    return await NodeChannelHandshake.AcceptAsync(stream, secret, CancellationToken.None);
                });
                using var dialer = new TcpClient();
                await dialer.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
                var dialerKey = await NodeChannelHandshake.DialAsync(dialer.GetStream(), secret, CancellationToken.None).WaitAsync(Bound);
                var listenerKey = await accepting.WaitAsync(Bound);
                Assert.NotNull(listenerKey);
                keys.Add((listenerKey, dialerKey));
            }
            Assert.All(keys, pair => Assert.Equal(pair.Listener, pair.Dialer));
            Assert.NotEqual(keys[0].Dialer, keys[1].Dialer);
            Assert.NotEqual(secret, keys[0].Dialer);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Pending_handshakes_beyond_the_cap_are_closed_on_accept()
    {
        // A long handshake deadline, so the idle connections below stay pending for the whole test on a slow machine.
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?> { ["Connect:Cluster:DataHandshakeTimeout"] = "00:02:00" });
        var server = node.Services.GetRequiredService<NodeChannelServer>();
        var port = DataPort(node);
        var idle = new List<TcpClient>();
        try
        {
            for (var i = 0; i < NodeChannelServer.MaxPendingHandshakes; i++)
            {
                var client = new TcpClient();
                idle.Add(client);
                await client.ConnectAsync(IPAddress.Loopback, port);
            }
            await Eventually.UntilAsync(() => server.PendingHandshakes == NodeChannelServer.MaxPendingHandshakes, "the idle connections are pending", Bound);

            // One more: closed at once, without even a nonce; a real node dialling now is refused the same way.
            using (var excess = new TcpClient())
            {
                await excess.ConnectAsync(IPAddress.Loopback, port);
                var read = await ReadOrResetAsync(excess.GetStream()).WaitAsync(Bound);
                Assert.Equal(0, read);
            }
            Assert.Equal(NodeChannelServer.MaxPendingHandshakes, server.PendingHandshakes);

            foreach (var client in idle)
            {
                client.Dispose();
            }
            await Eventually.UntilAsync(() => server.PendingHandshakes == 0, "the idle connections are gone", Bound);
            using var peer = new TcpClient();
            await peer.ConnectAsync(IPAddress.Loopback, port);
            await NodeChannelHandshake.DialAsync(peer.GetStream(), NodeChannelHandshake.SecretBytes(TestNode.DataSecret), CancellationToken.None).WaitAsync(Bound);
        }
        finally
        {
            foreach (var client in idle)
            {
                client.Dispose();
            }
        }
    }

    private static async Task<int> ReadOrResetAsync(Stream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[64]);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
