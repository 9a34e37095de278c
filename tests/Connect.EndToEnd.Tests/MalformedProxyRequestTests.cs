using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Malformed proxy requests over real sockets: each gets the exact status line (and, where the proxy itself answers, a
/// body that says why), the connection ends cleanly or stays usable, and a good request on a new connection still works.
/// </summary>
public sealed class MalformedProxyRequestTests(HardeningFixture fixture) : IClassFixture<HardeningFixture>
{
    private sealed record Case(Func<TestTargets, byte[]> Request, string StatusLine, string? BodyContains, bool Closes);

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    private static string Auth(string session = HardeningFixture.Session) => ProxyClient.Basic(session);

    private static string BasicRaw(string decoded) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(decoded));

    private static readonly Dictionary<string, Case> Table = new()
    {
        ["garbage bytes"] = new(_ => [0x01, 0x02, 0xFF, 0x00, 0x47, 0x0D, 0x0A, 0x0D, 0x0A], "HTTP/1.1 400 Bad Request", null, true),
        ["absolute-form without Host"] = new(t => Ascii($"GET http://127.0.0.1:{t.HttpPort}/hello HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", null, true),
        ["CONNECT without a port"] = new(_ => Ascii($"CONNECT no-port-here HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "must be host:port", true),
        ["CONNECT with a path in the authority"] = new(_ => Ascii($"CONNECT evil/x:443 HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "characters a host name cannot have", true),
        ["CONNECT port 0"] = new(_ => Ascii($"CONNECT 127.0.0.1:0 HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "port from 1 to 65535", true),
        ["CONNECT port 65536"] = new(_ => Ascii($"CONNECT 127.0.0.1:65536 HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "port from 1 to 65535", true),
        ["CONNECT port -1"] = new(_ => Ascii($"CONNECT 127.0.0.1:-1 HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "port from 1 to 65535", true),
        ["CONNECT port 99999999999"] = new(_ => Ascii($"CONNECT 127.0.0.1:99999999999 HTTP/1.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "port from 1 to 65535", true),
        ["absolute-form port 0"] = new(_ => Ascii($"GET http://127.0.0.1:0/ HTTP/1.1\r\nHost: 127.0.0.1:0\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "no valid host and port", false),
        ["absolute-form port 99999999999"] = new(_ => Ascii($"GET http://127.0.0.1:99999999999/ HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", null, false),
        ["ftp:// in absolute-form"] = new(_ => Ascii($"GET ftp://127.0.0.1/file HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", null, true), // Kestrel refuses a non-http(s) absolute-form target itself
        ["https:// in absolute-form"] = new(t => Ascii($"GET https://127.0.0.1:{t.HttpsPort}/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\n\r\n"), "HTTP/1.1 400 Bad Request", "use CONNECT for https://", false),
        ["TLS ClientHello on the plain port"] = new(_ => [0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03], "HTTP/1.1 400 Bad Request", "a TLS handshake arrived", true),
        // Request smuggling (RFC 9112 section 6.1, 11.2) cannot get past Kestrel, so the proxy needs no check of its own:
        // with Transfer-Encoding chunked, Kestrel drops Content-Length and the target gets exactly the chunked body (5 bytes
        // of "hello", not the 3 that Content-Length claims); any other Transfer-Encoding, or one a parser could read two
        // ways, is a 400 from Kestrel that closes the connection.
        ["Content-Length with Transfer-Encoding is framed by Transfer-Encoding alone"] = new(t => Ascii($"POST http://127.0.0.1:{t.HttpPort}/sha256 HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "HTTP/1.1 200 OK", "5:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", false),
        ["Content-Length with a Transfer-Encoding that does not end in chunked"] = new(t => Ascii($"POST http://127.0.0.1:{t.HttpPort}/sha256 HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello"), "HTTP/1.1 400 Bad Request", null, true),
        ["Content-Length with Transfer-Encoding spelled with a space before the colon"] = new(t => Ascii($"POST http://127.0.0.1:{t.HttpPort}/sha256 HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\nContent-Length: 3\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "HTTP/1.1 400 Bad Request", null, true),
        ["two Content-Lengths"] = new(t => Ascii($"POST http://127.0.0.1:{t.HttpPort}/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {Auth()}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), "HTTP/1.1 400 Bad Request", null, true),
        ["Basic credentials not base64"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\nProxy-Authorization: Basic %%%not-base64%%%\r\n\r\n"), "HTTP/1.1 407 Proxy Authentication Required", "not valid base64", false),
        ["Basic credentials without a colon"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\nProxy-Authorization: {BasicRaw("just-a-token")}\r\n\r\n"), "HTTP/1.1 407 Proxy Authentication Required", "must carry session:token", false),
        ["Basic credentials with a bad session name"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\nProxy-Authorization: {BasicRaw("bad session!:" + TestNode.Token)}\r\n\r\n"), "HTTP/1.1 407 Proxy Authentication Required", "session name in Proxy-Authorization is not valid", false),
        ["Basic credentials with a wrong token"] = new(t => Ascii($"GET http://127.0.0.1:{t.HttpPort}/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: {BasicRaw("e2e:wrong-token-0123456789")}\r\n\r\n"), "HTTP/1.1 407 Proxy Authentication Required", "invalid token (the session name is not repeated", false),
        ["a scheme other than Basic"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\nProxy-Authorization: Bearer {TestNode.Token}\r\n\r\n"), "HTTP/1.1 407 Proxy Authentication Required", "only the Basic scheme", false),
        ["CONNECT request line over the limit"] = new(_ => Ascii($"CONNECT {new string('a', 9000)}.example:443 HTTP/1.1\r\n\r\n"), "HTTP/1.1 414 URI Too Long", "request line longer than 8192 bytes", true),
        ["absolute-form request line over the limit"] = new(t => Ascii($"GET http://127.0.0.1:{t.HttpPort}/{new string('a', 9000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "HTTP/1.1 414 URI Too Long", null, true),
        ["CONNECT headers over the limit"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\n{string.Concat(Enumerable.Range(0, 40).Select(i => $"X-Filler-{i}: {new string('x', 1000)}\r\n"))}\r\n"), "HTTP/1.1 431 Request Header Fields Too Large", "request head larger than 32768 bytes", true),
        ["absolute-form headers over the limit"] = new(t => Ascii($"GET http://127.0.0.1:{t.HttpPort}/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n{string.Concat(Enumerable.Range(0, 40).Select(i => $"X-Filler-{i}: {new string('x', 1000)}\r\n"))}\r\n"), "HTTP/1.1 431 Request Header Fields Too Large", null, true),
        ["CONNECT with an unsupported version"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/2.0\r\n\r\n"), "HTTP/1.1 505 HTTP Version Not Supported", "unsupported protocol version", true),
        ["CONNECT with a malformed header line"] = new(t => Ascii($"CONNECT 127.0.0.1:{t.EchoPort} HTTP/1.1\r\nno colon here\r\n\r\n"), "HTTP/1.1 400 Bad Request", "malformed header line 1", true),
    };

    public static TheoryData<string> Cases => new(Table.Keys);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_malformed_request_gets_its_exact_status_and_the_node_stays_healthy(string name)
    {
        var @case = Table[name];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, fixture.Node.ProxyPort, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(@case.Request(fixture.Targets), timeout.Token);

        var (_, head, body) = await ProxyClient.ReadResponseHeadAsync(stream, timeout.Token);
        Assert.True(@case.StatusLine == head.Split("\r\n")[0], $"expected {@case.StatusLine}, got:\n{head}{body}");
        if (@case.BodyContains is not null)
        {
            Assert.Contains(@case.BodyContains, body);
        }
        if (@case.Closes)
        {
            // The server ends the connection (no half-open socket left behind): the next read sees the end.
            var rest = new byte[256];
            int read;
            try
            {
                read = await stream.ReadAsync(rest, timeout.Token);
            }
            catch (IOException)
            {
                read = 0;
            }
            Assert.Equal(0, read);
        }
        await fixture.AssertHealthyAsync();
    }

    [Fact]
    public async Task A_CONNECT_head_that_never_finishes_gets_408_after_the_head_timeout()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, fixture.Node.ProxyPort, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var started = DateTime.UtcNow;
        await stream.WriteAsync(Ascii($"CONNECT 127.0.0.1:{fixture.Targets.EchoPort} HTTP/1.1\r\nHost: x\r\n"), timeout.Token);
        // Dribble a header byte now and then, as slowloris does: the deadline covers the whole head, not each read.
        var dribble = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 20 && !timeout.IsCancellationRequested; i++)
                {
                    await Task.Delay(300, timeout.Token);
                    await stream.WriteAsync("X"u8.ToArray(), timeout.Token);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        });
        var (status, _, body) = await ProxyClient.ReadResponseHeadAsync(stream, timeout.Token);
        Assert.Equal(408, status);
        Assert.Contains("no complete request head within 2 s", body);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the deadline must not be re-armed by each dribbled byte");
        await timeout.CancelAsync();
        await dribble;
        Assert.Contains(fixture.Logs.Lines, l => l.Contains("rejected with 408"));
        await fixture.AssertHealthyAsync();
    }

    [Fact]
    public async Task An_absolute_form_head_that_never_finishes_gets_408_from_Kestrel()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, fixture.Node.ProxyPort, timeout.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Ascii($"GET http://127.0.0.1:{fixture.Targets.HttpPort}/hello HTTP/1.1\r\nHost: x\r\n"), timeout.Token);
        var (status, _, _) = await ProxyClient.ReadResponseHeadAsync(stream, timeout.Token);
        Assert.Equal(408, status);
        await fixture.AssertHealthyAsync();
    }
}
