using System.Diagnostics;
using System.Net.WebSockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;

namespace Connect.Bench.Sim;

/// <summary>
/// Many agents in one process: <see cref="SimulatorOptions.Sessions"/> sessions with
/// <see cref="SimulatorOptions.LinksPerSession"/> links each, every link a real connect.v1 WebSocket
/// (<c>/v1/tunnel?session=NAME</c>, bearer token, subprotocol connect.v1) with the agent's multiplexer on top: it
/// PINGs every <see cref="SimulatorOptions.KeepAliveInterval"/> and answers the node's PINGs, accepts OPENs (served
/// by <see cref="SimulatedTarget"/>), follows GOAWAY at once to the first suggested server that is one of its servers
/// (else the next server), and reconnects after a drop with jittered exponential backoff, as connect-client does.
/// </summary>
public sealed class AgentSimulator : IAsyncDisposable
{
    private readonly SimulatorOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _dials;
    private readonly List<Task> _loops = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _connected;
    private long _dialsDone;
    private long _dialFailures;
    private long _reconnects;
    private long _streamsServed;

    public AgentSimulator(SimulatorOptions options)
    {
        if (options.Servers.Count == 0)
        {
            throw new ArgumentException("give at least one server", nameof(options));
        }
        _options = options;
        _dials = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentDials));
    }

    public int TotalLinks => _options.Sessions * _options.LinksPerSession;

    /// <summary>Links whose WebSocket is open now.</summary>
    public int Connected => Volatile.Read(ref _connected);

    public long Dials => Interlocked.Read(ref _dialsDone);

    public long DialFailures => Interlocked.Read(ref _dialFailures);

    /// <summary>Links opened again after their previous one closed (drop, drain, GOAWAY).</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    public long StreamsServed => Interlocked.Read(ref _streamsServed);

    public static string SessionName(string prefix, int index) => $"{prefix}-{index:D5}";

    /// <summary>Starts every link's loop; each first dial waits its jitter. Returns at once.</summary>
    public void Start()
    {
        for (var s = 0; s < _options.Sessions; s++)
        {
            for (var k = 0; k < _options.LinksPerSession; k++)
            {
                var session = SessionName(_options.SessionPrefix, s);
                var first = (_options.StartServer ?? s + k) % _options.Servers.Count;
                _loops.Add(Task.Run(() => LinkLoopAsync(session, first, _stop.Token)));
            }
        }
    }

    /// <summary>Waits until <paramref name="links"/> links are open (default: all); returns the time since <see cref="Start"/>.</summary>
    public async Task<TimeSpan> WaitConnectedAsync(TimeSpan timeout, int? links = null)
    {
        var wanted = links ?? TotalLinks;
        var deadline = Stopwatch.StartNew();
        while (Connected < wanted)
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{Connected} of {wanted} links open after {timeout.TotalSeconds:0} s ({DialFailures} failed dials)");
            }
            await Task.Delay(50).ConfigureAwait(false);
        }
        return _clock.Elapsed;
    }

    private async Task LinkLoopAsync(string session, int server, CancellationToken cancellationToken)
    {
        var failures = 0;
        var opened = false;
        try
        {
            await Task.Delay(Jitter(_options.DialJitter), cancellationToken).ConfigureAwait(false);
            while (!cancellationToken.IsCancellationRequested)
            {
                var uri = _options.Servers[server % _options.Servers.Count];
                var link = await DialAsync(uri, session, cancellationToken).ConfigureAwait(false);
                if (link is null)
                {
                    failures++;
                    server++;
                    var ceiling = Math.Min(_options.BackoffMax.TotalMilliseconds, _options.BackoffMin.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 16)));
                    await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling), cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (opened)
                {
                    Interlocked.Increment(ref _reconnects);
                }
                opened = true;
                failures = 0;
                Interlocked.Increment(ref _connected);
                var goAway = new TaskCompletionSource<GoAwayInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
                link.Value.Mux.GoAwayReceived += info => goAway.TrySetResult(info);
                var run = link.Value.Mux.RunAsync(incoming =>
                {
                    Interlocked.Increment(ref _streamsServed);
                    _ = SimulatedTarget.ServeAsync(incoming.Accept(), session);
                }, cancellationToken);
                // GOAWAY: dial the next server at once (the old link finishes its streams and closes on its own).
                var ended = await Task.WhenAny(run, goAway.Task).ConfigureAwait(false);
                Interlocked.Decrement(ref _connected);
                if (ended == goAway.Task)
                {
                    _ = run.ContinueWith(_ => link.Value.Socket.Dispose(), TaskScheduler.Default);
                    server = Follow(server, await goAway.Task.ConfigureAwait(false));
                }
                else
                {
                    link.Value.Socket.Dispose();
                    server++;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Where a link goes after GOAWAY: like connect-client, to the first suggestion it trusts (here: one of its own
    /// servers, by host and port) that is not the server it leaves; else to its next server.
    /// </summary>
    private int Follow(int current, GoAwayInfo info)
    {
        var leaving = current % _options.Servers.Count;
        foreach (var suggestion in info.SuggestedServers)
        {
            if (!Uri.TryCreate(suggestion, UriKind.Absolute, out var uri))
            {
                continue;
            }
            for (var i = 0; i < _options.Servers.Count; i++)
            {
                if (i != leaving && string.Equals(_options.Servers[i].Authority, uri.Authority, StringComparison.OrdinalIgnoreCase))
                {
                    return i;
                }
            }
        }
        return current + 1;
    }

    private async Task<(ClientWebSocket Socket, TunnelMux Mux)?> DialAsync(Uri server, string session, CancellationToken cancellationToken)
    {
        await _dials.WaitAsync(cancellationToken).ConfigureAwait(false);
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
            socket.Options.SetRequestHeader("Authorization", $"Bearer {_options.Token}");
            // connect.v1 PING frames do keep-alive (the multiplexer's), as in connect-client. No WebSocket-level one on top.
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await socket.ConnectAsync(new Uri($"{server}?session={Uri.EscapeDataString(session)}"), timeout.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _dialsDone);
            var mux = new TunnelMux(new WebSocketFrameTransport(socket, server.Authority), new MuxOptions
            {
                IsDialer = true,
                AcceptInboundStreams = true,
                // Like connect-client: PING every interval (0: only answer the node's PINGs) and give up on silence.
                KeepAliveInterval = _options.KeepAliveInterval,
                KeepAliveTimeout = _options.KeepAliveInterval > TimeSpan.Zero ? _options.KeepAliveTimeout : TimeSpan.FromMinutes(5),
            });
            return (socket, mux);
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException or OperationCanceledException)
        {
            Interlocked.Increment(ref _dialFailures);
            socket.Dispose();
            return null;
        }
        finally
        {
            _dials.Release();
        }
    }

    private static TimeSpan Jitter(TimeSpan max) => max <= TimeSpan.Zero ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * max.TotalMilliseconds);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A link that does not close within the bound is abandoned with the process.
        }
        _stop.Dispose();
    }
}
