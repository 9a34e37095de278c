using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Requests that succeed end their streams with FIN both ways: the agent logs no "stream reset" for them and its
/// link counts no RST. Before, every absolute-form request to an app that closes after its response (python's
/// http.server) and every CONNECT that ended normally showed up on the agent as a reset.
/// </summary>
public sealed class CleanStreamEndTests(SingleNodeFixture fixture) : IClassFixture<SingleNodeFixture>, IAsyncLifetime
{
    private readonly TcpListener _target = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private Task _serve = Task.CompletedTask;

    private int TargetPort => ((IPEndPoint)_target.LocalEndpoint).Port;

    public Task InitializeAsync()
    {
        _target.Start();
        _serve = ServeHttp10Async(_stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        _target.Stop();
        await _serve.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>An HTTP/1.0 app like python's http.server: reads one request head, answers, closes.</summary>
    private async Task ServeHttp10Async(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            using var client = await _target.AcceptSocketAsync(stop);
            var head = new StringBuilder();
            var buffer = new byte[1024];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var read = await client.ReceiveAsync(buffer, SocketFlags.None, stop);
                if (read == 0)
                {
                    break;
                }
                head.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
            await client.SendAsync("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello from my laptop"u8.ToArray(), SocketFlags.None, stop);
            client.Shutdown(SocketShutdown.Both);
        }
    }

    private Connect.Tunnel.Multiplexing.TunnelMux AgentMux => Assert.Single(fixture.Agent.Agent.Links).Mux;

    private async Task AssertEndedCleanAsync(long resetsBefore)
    {
        // Both ends forget the stream only after FIN both ways or a RST; the RST count is then final.
        await Eventually.UntilAsync(() => AgentMux.ActiveStreams == 0 && fixture.Node.Links.ActiveStreams == 0, "the stream to end on both sides");
        Assert.Equal(resetsBefore, AgentMux.ResetsReceived);
        Assert.DoesNotContain(fixture.Agent.Log, line => line.Contains("aborted", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Absolute_form_request_to_an_app_that_closes_ends_without_a_reset()
    {
        var resets = AgentMux.ResetsReceived;
        using (var client = ProxyClient.Http(fixture.Node.ProxyPort, SingleNodeFixture.Session))
        {
            var response = await client.GetAsync($"http://127.0.0.1:{TargetPort}/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hello from my laptop", await response.Content.ReadAsStringAsync());
        }
        await AssertEndedCleanAsync(resets);
    }

    [Fact]
    public async Task CONNECT_tunnel_that_ends_normally_ends_without_a_reset()
    {
        var resets = AgentMux.ResetsReceived;
        using (var tunnel = await ProxyClient.ConnectAsync(fixture.Node.ProxyPort, $"127.0.0.1:{TargetPort}", ProxyClient.Basic(SingleNodeFixture.Session)))
        {
            Assert.Equal(200, tunnel.Status);
            await tunnel.Stream.WriteAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray());
            var response = new MemoryStream();
            await tunnel.Stream.CopyToAsync(response).WaitAsync(TimeSpan.FromSeconds(30)); // the app closes, the proxy closes the client
            Assert.EndsWith("hello from my laptop", Encoding.ASCII.GetString(response.ToArray()));
        }
        await AssertEndedCleanAsync(resets);
    }
}
