using System.Diagnostics;
using System.Net.WebSockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;

namespace Connect.Bench;

/// <summary>
/// Idle links for the scale scenario: a ClientWebSocket doing the connect.v1 handshake
/// (<c>/v1/tunnel?session=NAME</c>, <c>Authorization: Bearer</c>, subprotocol connect.v1) with a TunnelMux on
/// top that answers the node's PINGs, so links stay up as long as needed. One session per link.
/// </summary>
public sealed class IdleLinks : IAsyncDisposable
{
    private readonly List<(ClientWebSocket Socket, TunnelMux Mux, Task Run)> _links = [];

    public int Count => _links.Count;

    /// <summary>Adds links until there are <paramref name="target"/>; returns the wall time it took.</summary>
    public async Task<TimeSpan> GrowToAsync(Uri tunnel, int target, string token, int parallel, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(limit);
        var next = _links.Count;
        var gate = new SemaphoreSlim(parallel);
        var tasks = new List<Task>();
        var failures = 0;
        for (var i = next; i < target; i++)
        {
            await gate.WaitAsync(deadline.Token);
            var index = i;
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    var socket = new ClientWebSocket();
                    socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
                    socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
                    socket.Options.KeepAliveInterval = TimeSpan.Zero;
                    await socket.ConnectAsync(new Uri($"{tunnel}?session=idle-{index}"), deadline.Token);
                    var mux = new TunnelMux(new WebSocketFrameTransport(socket, "node"), new MuxOptions
                    {
                        IsDialer = true,
                        AcceptInboundStreams = true,
                        KeepAliveInterval = TimeSpan.Zero,
                    });
                    var run = mux.RunAsync(incoming => incoming.Reject(OpenErrorCode.NotAllowed, "idle link"));
                    lock (_links)
                    {
                        _links.Add((socket, mux, run));
                    }
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException)
                {
                    Interlocked.Increment(ref failures);
                }
                finally
                {
                    gate.Release();
                }
            }));
        }
        await Task.WhenAll(tasks);
        if (failures > 0)
        {
            throw new InvalidOperationException($"{failures} links failed to connect");
        }
        return watch.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var chunk in _links.Chunk(200))
        {
            await Task.WhenAll(chunk.Select(async l =>
            {
                try
                {
                    await l.Mux.CloseAsync(CloseCodes.Normal, "bench done").WaitAsync(TimeSpan.FromSeconds(10));
                }
                catch (Exception e) when (e is TimeoutException or WebSocketException or OperationCanceledException)
                {
                    l.Socket.Abort();
                }
                l.Socket.Dispose();
            }));
        }
        _links.Clear();
    }
}
