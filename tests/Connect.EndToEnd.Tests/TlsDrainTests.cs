using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Connect.Host.Draining;
using Connect.Host.Tunnels;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Between nodes that serve wss://, a drain must send agents to wss:// URLs only: the tunnel URL each node advertises to
/// the cluster (and other nodes suggest in GOAWAY) comes from the same rule as the banner. Before, it was always ws://,
/// and an agent following the suggestion sent its bearer token in clear on every rolling deploy.
/// </summary>
public sealed class TlsDrainTests
{

    [Fact]
    public async Task Between_TLS_nodes_the_advertised_tunnel_url_and_the_GOAWAY_suggestions_are_wss()
    {
        using var certificates = new SelfSignedCertificates();
        var (certPath, keyPath, certificate) = certificates.SelfSigned("tunnel");
        var tls = new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Certificate:Path"] = certPath,
            ["Connect:Tunnel:Certificate:KeyPath"] = keyPath,
        };
        var portA = FreePorts.Next();
        var portB = FreePorts.Next();
        await using var nodeA = await TestNode.StartAsync(settings: tls, tunnelPort: portA);
        await using var nodeB = await TestNode.StartAsync(seeds: [nodeA.Address], settings: tls, tunnelPort: portB);
        await nodeA.WaitMembersUpAsync(2, TimeSpan.FromSeconds(30));

        Assert.Equal($"wss://127.0.0.1:{portA}", nodeA.Identity.TunnelUrl);
        var lifecycleA = nodeA.Services.GetRequiredService<NodeLifecycle>();
        await Eventually.UntilAsync(() => lifecycleA.SuggestedServers().Count == 1, "node A sees node B's tunnel URL", TimeSpan.FromSeconds(20));
        Assert.Equal([$"wss://127.0.0.1:{portB}"], lifecycleA.SuggestedServers());

        // What an agent on node A really receives when A drains: a GOAWAY whose suggestions are wss:// only.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", $"Bearer {TestNode.Token}");
        socket.Options.RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();
        await socket.ConnectAsync(new Uri($"wss://127.0.0.1:{portA}/v1/tunnel?session=tls-drain"), timeout.Token);
        // Attached to its session entity (so its link actor exists and will pass the drain's GOAWAY on).
        await Eventually.AssertAsync(async () => Assert.Single((await nodeA.GetSessionAsync("tls-drain")).Links), TimeSpan.FromSeconds(15));

        var drain = lifecycleA.DrainAsync("test", CancellationToken.None);
        var buffer = new byte[256 * 1024];
        byte[]? goAway = null;
        var seen = new List<string>();
        while (goAway is null)
        {
            var filled = 0;
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, filled, buffer.Length - filled), timeout.Token);
                filled += result.Count;
            }
            while (!result.EndOfMessage);
            Assert.True(result.MessageType != WebSocketMessageType.Close, $"closed before GOAWAY: {result.CloseStatus} {result.CloseStatusDescription}; seen: {string.Join(",", seen)}");
            seen.Add($"{result.MessageType}:{filled}:{buffer[0]:x2}");
            // One message may carry several frames (the multiplexer merges small writes): [type][id u32][length u32][payload].
            for (var offset = 0; offset + 9 <= filled && goAway is null;)
            {
                var length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(offset + 5));
                if (buffer[offset] == (byte)FrameType.GoAway)
                {
                    goAway = buffer[(offset + 9)..(offset + 9 + length)];
                }
                offset += 9 + length;
            }
        }
        var reasonLength = (goAway[1] << 8) | goAway[2];
        var suggested = Encoding.UTF8.GetString(goAway, 3 + reasonLength, goAway.Length - 3 - reasonLength).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([$"wss://127.0.0.1:{portB}"], suggested);
        Assert.All(suggested, url => Assert.StartsWith("wss://", url));
        socket.Abort();
        await drain.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void A_plain_ws_public_tunnel_url_beside_a_tunnel_certificate_stops_start_up()
    {
        var refused = Assert.Throws<InvalidOperationException>(() => Connect.Host.ConnectNode.Build([], new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Certificate:Path"] = "/etc/connect/tunnel.pem",
            ["Connect:Tunnel:PublicUrl"] = "ws://connect.example.com:443",
        }));
        Assert.Contains("Connect:Tunnel:PublicUrl", refused.Message);
        Assert.Contains("wss://", refused.Message);
    }
}
