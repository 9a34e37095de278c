using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>The data path on one node: proxy client -> proxy -> session entity -> link -> agent -> private app, and back.</summary>
public sealed class ProxyDataPathTests(SingleNodeFixture fixture) : IClassFixture<SingleNodeFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private TestTargets Targets => fixture.Targets;

    private int ProxyPort => fixture.Node.ProxyPort;

    [Fact]
    public async Task Absolute_form_GET_reaches_the_private_app_after_the_407_challenge()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        var response = await client.GetAsync($"http://localhost:{Targets.HttpPort}/hello");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello from the private app", await response.Content.ReadAsStringAsync());
        Assert.Contains("1.1 connect", response.Headers.Via.Select(v => $"{v.ProtocolVersion} {v.ReceivedBy}"));
    }

    [Fact]
    public async Task Hop_by_hop_and_proxy_headers_do_not_reach_the_target()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://localhost:{Targets.HttpPort}/headers");
        request.Headers.Add("X-Custom", "kept");
        request.Headers.Add("X-Drop-Me", "dropped");
        request.Headers.Connection.Add("X-Drop-Me");
        var response = await client.SendAsync(request);
        var seen = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"X-Custom\":\"kept\"", seen);
        Assert.DoesNotContain("X-Drop-Me", seen);
        Assert.DoesNotContain("Proxy-Authorization", seen);
        Assert.Contains("\"Via\":\"1.1 connect\"", seen);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Absolute_form_POST_streams_the_body_both_ways(bool chunked)
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        // A streamed body cannot be re-sent after a 407, so send the credentials up front (as curl -x user:pass does).
        client.DefaultRequestHeaders.ProxyAuthorization = System.Net.Http.Headers.AuthenticationHeaderValue.Parse(ProxyClient.Basic(SingleNodeFixture.Session));
        var payload = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        HttpContent content = chunked ? new StreamContent(new NonSeekableStream(payload)) : new ByteArrayContent(payload);
        var response = await client.PostAsync($"http://localhost:{Targets.HttpPort}/echo", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await response.Content.ReadAsByteArrayAsync()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Absolute_form_download_is_byte_identical_with_content_length_and_chunked(bool chunked)
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        const long size = 20L * 1024 * 1024;
        using var response = await client.GetAsync($"http://localhost:{Targets.HttpPort}/bytes/{size}?chunked={chunked}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(chunked ? null : size, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync();
        Assert.Equal(size, await DeterministicBytes.VerifyAsync(body, CancellationToken.None));
    }

    [Fact]
    public async Task Keep_alive_reuses_the_proxy_connection_for_many_requests()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal("hello from the private app", await client.GetStringAsync($"http://localhost:{Targets.HttpPort}/hello"));
        }
    }

    [Fact]
    public async Task CONNECT_to_an_HTTPS_target_with_a_self_signed_certificate()
    {
        using var client = ProxyClient.Http(ProxyPort, SingleNodeFixture.Session);
        var text = await client.GetStringAsync($"https://localhost:{Targets.HttpsPort}/hello");
        Assert.Equal("hello from the private app", text);
    }

    [Fact]
    public async Task CONNECT_to_a_raw_TCP_echo_server()
    {
        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(200, tunnel.Status);
        Assert.StartsWith("HTTP/1.1 200 Connection Established\r\n", tunnel.Head);
        var message = Encoding.ASCII.GetBytes("ping through the tunnel");
        await tunnel.Stream.WriteAsync(message);
        var echoed = new byte[message.Length];
        await tunnel.Stream.ReadExactlyAsync(echoed).AsTask().WaitAsync(Bound);
        Assert.Equal(message, echoed);
    }

    [Fact]
    public async Task A_WebSocket_upgrade_through_CONNECT_echoes_messages()
    {
        using var socket = new ClientWebSocket();
        socket.Options.Proxy = new WebProxy($"http://127.0.0.1:{ProxyPort}") { Credentials = new NetworkCredential(SingleNodeFixture.Session, TestNode.Token) };
        socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        await socket.ConnectAsync(new Uri($"wss://localhost:{Targets.HttpsPort}/ws"), CancellationToken.None).WaitAsync(Bound);
        var message = Encoding.UTF8.GetBytes("hello over a websocket over the tunnel");
        await socket.SendAsync(message, WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[1024];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Bound);
        Assert.Equal(message, buffer[..result.Count]);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(Bound);
    }

    [Fact]
    public async Task Sixty_four_MiB_each_way_through_one_stream_are_byte_identical()
    {
        const int size = 64 * 1024 * 1024;
        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(200, tunnel.Status);

        var result = await EchoTransfer.RunAsync(tunnel, size, Bound);
        Assert.Equal(size, result.Received);
        Assert.Equal(result.SentHash, result.ReceivedHash);
    }

    [Fact]
    public async Task One_hundred_concurrent_streams_on_one_tunnel()
    {
        var tasks = Enumerable.Range(0, 100).Select(async i =>
        {
            using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.EchoPort}", ProxyClient.Basic(SingleNodeFixture.Session));
            Assert.Equal(200, tunnel.Status);
            var payload = new byte[64 * 1024];
            DeterministicBytes.Fill(payload, i * 1000);
            var write = tunnel.Stream.WriteAsync(payload).AsTask();
            var echoed = new byte[payload.Length];
            await tunnel.Stream.ReadExactlyAsync(echoed);
            await write;
            Assert.Equal(payload, echoed);
        });
        await Task.WhenAll(tasks).WaitAsync(Bound);
    }

    [Fact]
    public async Task Half_close_the_client_shuts_its_write_side_and_still_gets_the_reply()
    {
        using var tunnel = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.ReplyAfterFinPort}", ProxyClient.Basic(SingleNodeFixture.Session));
        Assert.Equal(200, tunnel.Status);
        var payload = Encoding.ASCII.GetBytes("all of the request, then FIN");
        await tunnel.Stream.WriteAsync(payload);
        tunnel.Socket.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(tunnel.Stream);
        var reply = await reader.ReadToEndAsync().WaitAsync(Bound);
        Assert.Equal($"{payload.Length}:{Convert.ToHexString(SHA256.HashData(payload))}", reply);
    }

    [Fact]
    public async Task A_slow_reader_does_not_stall_a_fast_stream_and_its_buffer_stays_within_the_window()
    {
        const long slowSize = 64L * 1024 * 1024;
        const long fastSize = 32L * 1024 * 1024;
        var auth = ProxyClient.Basic(SingleNodeFixture.Session);
        using var slow = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.SourcePort}", auth);
        await slow.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{slowSize}\n"));
        // The slow client reads nothing yet: its stream fills its window and stops there.

        using var fast = await ProxyClient.ConnectAsync(ProxyPort, $"127.0.0.1:{Targets.SourcePort}", auth);
        await fast.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{fastSize}\n"));
        Assert.Equal(fastSize, await DeterministicBytes.VerifyAsync(fast.Stream, CancellationToken.None).WaitAsync(Bound));

        var link = Assert.Single(fixture.Node.Links.All, l => l.SessionId == SingleNodeFixture.Session);
        // The slow stream is the first one opened to the source; the fast one may still be half-closed and listed too.
        var slowStream = link.Mux.Streams.Where(s => s.Target == $"127.0.0.1:{Targets.SourcePort}").OrderBy(s => s.Id).First();
        Assert.True(slowStream.BufferedBytes <= Tunnel.Frames.ProtocolLimits.InitialWindow, $"node buffers {slowStream.BufferedBytes} bytes for the slow stream");
        Assert.True(slowStream.BytesRead < slowSize / 2, $"the slow stream moved {slowStream.BytesRead} bytes although nobody read them");

        // And nothing is lost: the slow reader gets every byte once it reads.
        Assert.Equal(slowSize, await DeterministicBytes.VerifyAsync(slow.Stream, CancellationToken.None).WaitAsync(Bound));
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
