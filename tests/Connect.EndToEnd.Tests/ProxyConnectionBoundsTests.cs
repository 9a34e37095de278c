using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.Proxy;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// The proxy connection's edges over real sockets (issue 11, finding 10): a refused CONNECT ends its connection, the
/// CONNECT open is bounded and cancelled with the client, a client too slow with its body is timed out.
/// </summary>
public sealed class ProxyConnectionBoundsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_refused_CONNECT_closes_the_connection_so_the_tunnel_bytes_behind_it_are_never_read_as_a_request()
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        await using var agent = await TestAgent.StartAsync("refused-connect", [node.TunnelUri]);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, node.ProxyPort);
        await using var stream = new NetworkStream(socket, ownsSocket: false);

        // A CONNECT without credentials, and right behind it (as a client that does not wait for the 200 sends its
        // tunnel bytes) something that would be a valid proxy request if it were ever parsed as one.
        var smuggled = $"GET http://127.0.0.1:{targets.HttpPort}/hello HTTP/1.1\r\nHost: 127.0.0.1:{targets.HttpPort}\r\nProxy-Authorization: {ProxyClient.Basic("refused-connect")}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{targets.EchoPort} HTTP/1.1\r\nHost: 127.0.0.1:{targets.EchoPort}\r\n\r\n{smuggled}"));

        var everything = await ReadToEndAsync(stream).WaitAsync(Bound);
        Assert.StartsWith("HTTP/1.1 407 ", everything);
        Assert.Contains("Connection: close", everything);
        Assert.DoesNotContain("hello from the private app", everything);
        Assert.Equal(1, CountOccurrences(everything, "HTTP/1.1 "));
    }

    [Fact]
    public async Task A_CONNECT_open_is_bounded_by_the_open_timeout_and_cancelled_when_its_client_leaves()
    {
        // No agent for the session, and a hold far longer than the open timeout: only the open timeout can answer.
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:Sessions:HoldTimeout"] = "00:00:40",
            ["Connect:Proxy:Options:StreamOpenTimeout"] = "00:00:02",
        });
        var drain = node.Services.GetRequiredService<ProxyDrain>();

        var started = DateTime.UtcNow;
        using (var timedOut = await ProxyClient.ConnectAsync(node.ProxyPort, "127.0.0.1:9", ProxyClient.Basic("nobody-home")).WaitAsync(Bound))
        {
            Assert.Equal(504, timedOut.Status);
            Assert.Contains("within 2 s", timedOut.Body);
        }
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20), "answered by the open timeout, not the 40 s hold");

        // A client that gives up while its stream is being opened takes the open with it: nothing stays in flight.
        using var leaving = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await leaving.ConnectAsync(IPAddress.Loopback, node.ProxyPort);
        await leaving.SendAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: {ProxyClient.Basic("nobody-home")}\r\n\r\n"));
        await Eventually.UntilAsync(() => drain.InFlight == 1, "the CONNECT waiting for its stream", Bound);
        leaving.LingerState = new LingerOption(true, 0);
        leaving.Close();
        await Eventually.UntilAsync(() => drain.InFlight == 0, "the abandoned CONNECT's open cancelled", TimeSpan.FromSeconds(1.5));
    }

    [Fact]
    public async Task An_absolute_form_client_that_stalls_its_body_is_timed_out()
    {
        // A target that reads forever and never answers: only the proxy's own bound can end this request.
        using var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start();
        var sinkPort = ((IPEndPoint)sink.LocalEndpoint).Port;
        var accepted = new List<Socket>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket s;
                try
                {
                    s = await sink.AcceptSocketAsync();
                }
                catch (Exception)
                {
                    return;
                }
                lock (accepted)
                {
                    accepted.Add(s);
                }
                _ = Task.Run(async () =>
                {
                    var buffer = new byte[4096];
                    try
                    {
                        while (await s.ReceiveAsync(buffer) > 0)
                        {
                        }
                    }
                    catch (Exception)
                    {
                    }
                });
            }
        });
        await using var node = await TestNode.StartAsync(settings: new Dictionary<string, string?> { ["Connect:Proxy:Options:MinClientDataRateGrace"] = "00:00:02" });
        await using var agent = await TestAgent.StartAsync("slow-body", [node.TunnelUri]);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, node.ProxyPort);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST http://127.0.0.1:{sinkPort}/upload HTTP/1.1\r\nHost: 127.0.0.1:{sinkPort}\r\nProxy-Authorization: {ProxyClient.Basic("slow-body")}\r\nContent-Length: 100000\r\n\r\n0123456789"));

        // Then nothing more: the connection must end (an answer and close, or a reset), not hang.
        var ended = await ReadToEndAsync(stream).WaitAsync(Bound);
        Assert.DoesNotContain("HTTP/1.1 200", ended);
        foreach (var s in accepted)
        {
            s.Dispose();
        }
        sink.Stop();
    }

    private static async Task<string> ReadToEndAsync(Stream stream)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (IOException)
        {
            // Reset rather than FIN: the connection still ended.
        }
        return text.ToString();
    }

    private static int CountOccurrences(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }
}
