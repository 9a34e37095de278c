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

    private int _moved;

    public int Count => _links.Count;

    /// <summary>Where a link goes when its node sends GOAWAY (the drain scenario); null: GOAWAY is ignored.</summary>
    public Uri? FollowGoAwayTo { get; set; }

    public string Token { get; set; } = "";

    /// <summary>Links re-established on <see cref="FollowGoAwayTo"/> after a GOAWAY.</summary>
    public int Moved => Volatile.Read(ref _moved);

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
                    await AddLinkAsync(tunnel, $"idle-{index}", token, deadline.Token);
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

    private async Task AddLinkAsync(Uri tunnel, string session, string token, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await socket.ConnectAsync(new Uri($"{tunnel}?session={session}"), cancellationToken);
        var mux = new TunnelMux(new WebSocketFrameTransport(socket, "node"), new MuxOptions
        {
            IsDialer = true,
            AcceptInboundStreams = true,
            KeepAliveInterval = TimeSpan.Zero,
        });
        if (FollowGoAwayTo is { } next)
        {
            // What the agent does on GOAWAY: a new link elsewhere at once; the old one closes when the node says so.
            mux.GoAwayReceived += info => Task.Run(async () =>
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                await AddLinkAsync(next, session, token, timeout.Token);
                Interlocked.Increment(ref _moved);
            });
        }
        var run = mux.RunAsync(incoming => incoming.Reject(OpenErrorCode.NotAllowed, "idle link"));
        lock (_links)
        {
            _links.Add((socket, mux, run));
        }
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
