using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Connect.Testing;

namespace Connect.Cluster.Tests;

/// <summary>Proxy requests through any node reach an agent whose link is on another node; bytes cross one node boundary, over the node channel, with backpressure.</summary>
public sealed class CrossNodeDataPathTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task An_agent_on_node_3_serves_absolute_form_and_CONNECT_through_every_node()
    {
        await using var agent = await TestAgent.StartAsync("everywhere", [cluster[3].TunnelUri]);
        foreach (var node in cluster.Nodes)
        {
            using var client = ProxyClient.Http(node.ProxyPort, "everywhere");
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{cluster.Targets.HttpPort}/hello"));
            Assert.Equal("hello from the private app", await client.GetStringAsync($"https://localhost:{cluster.Targets.HttpsPort}/hello"));

            using var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{cluster.Targets.EchoPort}", ProxyClient.Basic("everywhere"));
            Assert.Equal(200, tunnel.Status);
            await tunnel.Stream.WriteAsync(Encoding.ASCII.GetBytes($"via {node.Address}"));
            var echoed = new byte[$"via {node.Address}".Length];
            await tunnel.Stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Bound);
            Assert.Equal($"via {node.Address}", Encoding.ASCII.GetString(echoed));
        }
        Assert.All(cluster[3].Links.All, l => Assert.Equal("everywhere", l.SessionId));
        Assert.Empty(cluster[1].Links.All);
    }

    [Fact]
    public async Task Sixty_four_MiB_each_way_across_nodes_are_byte_identical()
    {
        await using var agent = await TestAgent.StartAsync("bulk-across", [cluster[3].TunnelUri]);
        const int size = 64 * 1024 * 1024;
        using var tunnel = await ProxyClient.ConnectAsync(cluster[1].ProxyPort, $"127.0.0.1:{cluster.Targets.EchoPort}", ProxyClient.Basic("bulk-across"));
        Assert.Equal(200, tunnel.Status);
        var result = await EchoTransfer.RunAsync(tunnel, size, Bound);
        Assert.Equal(size, result.Received);
        Assert.Equal(result.SentHash, result.ReceivedHash);
    }

    [Fact]
    public async Task A_slow_reader_across_nodes_keeps_every_buffer_within_its_window()
    {
        await using var agent = await TestAgent.StartAsync("slow-across", [cluster[3].TunnelUri]);
        const long size = 64L * 1024 * 1024;
        using var slow = await ProxyClient.ConnectAsync(cluster[1].ProxyPort, $"127.0.0.1:{cluster.Targets.SourcePort}", ProxyClient.Basic("slow-across"));
        Assert.Equal(200, slow.Status);
        await slow.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{size}\n"));

        // While the client reads nothing, a fast stream on the same session moves 16 MiB across nodes.
        using var fast = await ProxyClient.ConnectAsync(cluster[1].ProxyPort, $"127.0.0.1:{cluster.Targets.SourcePort}", ProxyClient.Basic("slow-across"));
        await fast.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{16 * 1024 * 1024}\n"));
        Assert.Equal(16 * 1024 * 1024, await DeterministicBytes.VerifyAsync(fast.Stream, CancellationToken.None).WaitAsync(Bound));

        var link = Assert.Single(cluster[3].Links.All);
        // The slow stream is the first one opened to the source; the fast one may still be half-closed and listed too.
        var linkStream = link.Mux.Streams.Where(s => s.Target == $"127.0.0.1:{cluster.Targets.SourcePort}").OrderBy(s => s.Id).First();
        Assert.True(linkStream.BufferedBytes <= Tunnel.Frames.ProtocolLimits.InitialWindow, $"link stream buffers {linkStream.BufferedBytes}");
        // Bytes that left the agent are bounded by the windows on the two hops plus socket and pipe buffers, far below the 64 MiB on offer.
        Assert.True(linkStream.BytesRead < 16L * 1024 * 1024, $"{linkStream.BytesRead} bytes moved for a reader that reads nothing");

        Assert.Equal(size, await DeterministicBytes.VerifyAsync(slow.Stream, CancellationToken.None).WaitAsync(Bound));
    }

    [Fact]
    public async Task The_agent_refusal_travels_back_across_nodes_unchanged()
    {
        await using var agent = await TestAgent.StartAsync("refusal-across", [cluster[3].TunnelUri]);
        using var client = ProxyClient.Http(cluster[1].ProxyPort, "refusal-across");
        var notAllowed = await client.GetAsync("http://intranet.example:8080/");
        Assert.Equal(HttpStatusCode.Forbidden, notAllowed.StatusCode);
        var refused = await client.GetAsync($"http://127.0.0.1:{cluster.Targets.ClosedPort}/");
        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        Assert.Contains("connection refused by the target", await refused.Content.ReadAsStringAsync());
    }
}
