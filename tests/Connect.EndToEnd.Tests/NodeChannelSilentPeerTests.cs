using System.Net;
using System.Net.Sockets;
using Connect.Routing.NodeChannel;
using Connect.Routing.Security;
using Connect.Testing;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Issue 13, finding 1, the cause of the last FreezeTests hang, without freezing a process: a node channel whose peer
/// goes silent while its TCP connection stays open (what SIGSTOP, a long GC pause or a stalled VM look like from the
/// other node: the kernel even accepts our bytes). A stream on it, like a pooled upstream connection of the proxy that a
/// request has just been written on, must be reset as LinkLost soon (so the proxy retries it on another link) instead of
/// waiting for an answer until the peer is downed; and a new open to that peer must be refused as GoingAway.
/// </summary>
public sealed class NodeChannelSilentPeerTests
{
    [Fact]
    public async Task A_stream_on_a_channel_whose_peer_goes_silent_is_reset_as_link_lost_and_new_opens_are_refused_at_once()
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        await using var agent = await TestAgent.StartAsync("silent-1", [node.TunnelUri]);
        var link = node.Links.All.Single(l => l.SessionId == "silent-1");
        await using var relay = FreezableRelay.Start(node.Identity.DataEndpoint);
        await using var pool = new NodeChannelPool(node.Services.GetRequiredService<NodeChannelSecret>(), node.Services.GetRequiredService<ClusterTls>(), NullLogger<NodeChannelPool>.Instance);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var stream = await pool.OpenAsync(relay.Endpoint, link.LinkId, $"127.0.0.1:{targets.EchoPort}", timeout.Token);
        await EchoAsync(stream, "before", timeout.Token);

        relay.Freeze();
        // Written into the silent channel, as a request on a reused pooled connection is: nothing comes back.
        await stream.WriteAsync("during"u8.ToArray(), timeout.Token);
        var read = stream.ReadAsync(new byte[16], timeout.Token).AsTask();

        // Bounded well below the old keep-alive (10 s PINGs, 30 s of silence: 30-40 s) and above the new one (1 s, 5 s).
        var lost = await Assert.ThrowsAsync<StreamResetException>(() => read.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(ResetCode.LinkLost, lost.Code);

        // GoingAway, so the broker asks the session for another link (never a 502 for the agent's "refusal").
        var refused = await Assert.ThrowsAsync<StreamOpenException>(() =>
            pool.OpenAsync(relay.Endpoint, link.LinkId, $"127.0.0.1:{targets.EchoPort}", timeout.Token).WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(OpenErrorCode.GoingAway, refused.Code);
    }

    private static async Task EchoAsync(Stream stream, string text, CancellationToken cancellationToken)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        await stream.WriteAsync(bytes, cancellationToken);
        var back = new byte[bytes.Length];
        await stream.ReadExactlyAsync(back, cancellationToken);
        Assert.Equal(bytes, back);
    }

    /// <summary>A TCP relay on loopback that, once frozen, forwards nothing either way and closes nothing: a stopped process.</summary>
    private sealed class FreezableRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly string _upstream;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<TcpClient> _sockets = [];
        private volatile bool _frozen;

        private FreezableRelay(string upstream)
        {
            _upstream = upstream;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _ = AcceptAsync();
        }

        public string Endpoint => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public static FreezableRelay Start(string upstream) => new(upstream);

        public void Freeze() => _frozen = true;

        private async Task AcceptAsync()
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
                    var colon = _upstream.LastIndexOf(':');
                    var outbound = new TcpClient();
                    await outbound.ConnectAsync(_upstream[..colon], int.Parse(_upstream[(colon + 1)..]), _stop.Token);
                    lock (_sockets)
                    {
                        _sockets.Add(inbound);
                        _sockets.Add(outbound);
                    }
                    _ = PumpAsync(inbound.GetStream(), outbound.GetStream());
                    _ = PumpAsync(outbound.GetStream(), inbound.GetStream());
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Disposed.
            }
        }

        private async Task PumpAsync(NetworkStream from, NetworkStream to)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var read = await from.ReadAsync(buffer, _stop.Token);
                    if (_frozen)
                    {
                        // Holds what it read, forever: neither side hears anything more, neither sees a close.
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                    }
                    if (read == 0)
                    {
                        to.Socket.Shutdown(SocketShutdown.Send);
                        return;
                    }
                    await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
                // Disposed, or a side closed.
            }
        }

        public ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_sockets)
            {
                foreach (var socket in _sockets)
                {
                    socket.Dispose();
                }
            }
            _stop.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
