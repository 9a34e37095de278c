using System.Net;
using System.Net.Sockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Piping;
using Connect.Tunnel.Targets;
using Connect.Tunnel.Transport;

namespace Connect.Client;

/// <summary>The servers said no in a way that retrying cannot fix (bad token, session not allowed), every one of them, several times.</summary>
public sealed class AgentRejectedException(string message) : Exception(message);

/// <summary>
/// The Connect agent: holds <see cref="AgentOptions.Links"/> tunnel links to the cluster, reconnects with
/// exponential backoff and jitter, follows GOAWAY by opening a new link before the old one is gone, and
/// answers each OPEN by dialling the target on this side, subject to the customer's allow-list.
/// Which server a link dials is <see cref="ServerRotation"/>'s job, opening it <see cref="LinkConnector"/>'s,
/// the graceful stop <see cref="AgentDrain"/>'s and the status lines <see cref="StatusPrinter"/>'s.
/// </summary>
public sealed class ConnectAgent
{
    private readonly AgentOptions _options;
    private readonly Action<string> _log;
    private readonly object _sync = new();
    private readonly List<AgentLink> _links = [];
    private readonly LinkConnector _connector;
    private readonly SuggestionPolicy _suggestions;
    private readonly ServerRotation _rotation;
    private readonly TargetDialer _dialer;
    private long _linkCounter;
    private long _streamsServed;
    private long _streamsRefused;

    public ConnectAgent(AgentOptions options, Action<string>? log = null, TimeProvider? time = null)
    {
        _options = options;
        _log = log ?? (line => Console.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {line}"));
        _connector = new LinkConnector(options);
        _suggestions = new SuggestionPolicy(options.Servers, options.FollowSuffixes);
        _rotation = new ServerRotation(options, time ?? TimeProvider.System);
        _dialer = new TargetDialer(options.Allow, options.Resolver, options.DialTimeout);
    }

    /// <summary>One live link: which server and node it reached, and its multiplexer.</summary>
    public sealed record AgentLink(long Number, Uri Server, string Node, TunnelMux Mux, DateTimeOffset Since);

    /// <summary>Links that are connected now (including ones finishing after GOAWAY).</summary>
    public IReadOnlyList<AgentLink> Links { get { lock (_sync) { return _links.ToArray(); } } }

    /// <summary>Every server the agent may dial now: trusted GOAWAY suggestions first, then the configured ones.</summary>
    public IReadOnlyList<Uri> Servers => _rotation.Candidates;

    public long StreamsServed => Interlocked.Read(ref _streamsServed);

    public long StreamsRefused => Interlocked.Read(ref _streamsRefused);

    /// <summary>Raised after a link is established.</summary>
    public event Action<AgentLink>? LinkConnected;

    /// <summary>Runs until <paramref name="stop"/> fires, then drains: no new streams, open ones finish within the grace, links close.</summary>
    /// <exception cref="AgentRejectedException">Every configured server refused the token or the session, several times in a row.</exception>
    public async Task RunAsync(CancellationToken stop)
    {
        _log($"session '{_options.Session}', servers: {string.Join(", ", _options.Servers)}");
        _log(_options.Allow.IsDefault
            ? $"allow-list (default, this machine only): {_options.Allow}; use --allow to let the cloud reach more"
            : $"allow-list: {_options.Allow}");
        if (_options.Resolver is HostsFileResolver hosts)
        {
            _log($"names resolve through {hosts.Path} first ({hosts.Count} names; {AgentCommandLine.HostsFileVariable}, a test/ops hook)");
        }
        if (_options.InsecureSkipVerify)
        {
            _log("WARNING: --insecure: server certificates are NOT verified; anyone in the path can read this tunnel");
        }

        using var fatal = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var slots = Enumerable.Range(0, _options.Links).Select(slot => RunSlotAsync(slot, fatal)).ToArray();
        var status = _options.StatusInterval > TimeSpan.Zero ? StatusPrinter.RunAsync(() => Links, _options.StatusInterval, _log, fatal.Token) : Task.CompletedTask;
        try
        {
            await Task.WhenAll(slots).ConfigureAwait(false);
        }
        catch (AgentRejectedException)
        {
            // Surfaced after the drain below.
        }
        finally
        {
            await fatal.CancelAsync().ConfigureAwait(false);
            await status.ConfigureAwait(false);
        }
        await AgentDrain.RunAsync(Links, _options.ShutdownGrace, _log).ConfigureAwait(false);
        var rejected = slots.Select(s => s.Exception?.InnerException).OfType<AgentRejectedException>().FirstOrDefault();
        if (rejected is not null)
        {
            throw rejected;
        }
    }

    private async Task RunSlotAsync(int slot, CancellationTokenSource fatal)
    {
        var stop = fatal.Token;
        var attempt = 0;
        var cursor = slot;
        Uri? leaving = null;
        while (!stop.IsCancellationRequested)
        {
            var inUse = Links.Where(l => !l.Mux.IsGoingAway).Select(l => l.Server).ToHashSet();
            var server = _rotation.Next(ref cursor, inUse, leaving, out var wait);
            if (server is null)
            {
                _log($"link slot {slot}: every server refused the agent recently; trying again in {wait.TotalSeconds:0.0} s");
                await DelayAsync(wait, stop).ConfigureAwait(false);
                continue;
            }
            AgentLink link;
            try
            {
                link = await ConnectAsync(server, stop).ConfigureAwait(false);
                attempt = 0;
                leaving = null;
            }
            catch (LinkConnector.RefusedException e)
            {
                // One refusal is not the end: a token rotated mid-roll, or one misconfigured node or load balancer,
                // must not take the customer offline. The server sits out a long back-off; the others are tried.
                var sitOut = _rotation.Refused(server, e.Message);
                if (_rotation.AllConfiguredRefused(out var summary))
                {
                    _log($"link slot {slot}: {summary}; giving up");
                    await fatal.CancelAsync().ConfigureAwait(false);
                    throw new AgentRejectedException(summary);
                }
                _log($"link slot {slot}: {e.Message}; trying the other servers, this one again in {sitOut.TotalSeconds:0} s");
                cursor++;
                continue;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                var delay = Backoff(attempt++);
                _log($"cannot reach {server}: {_connector.Describe(e)}; retrying in {delay.TotalSeconds:0.0} s");
                cursor++;
                await DelayAsync(delay, stop).ConfigureAwait(false);
                continue;
            }
            catch (OperationCanceledException)
            {
                break;
            }

            // Follow GOAWAY at once: a new link takes over while the old one finishes its streams.
            var goAway = new TaskCompletionSource<GoAwayInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
            link.Mux.GoAwayReceived += info => goAway.TrySetResult(info);
            var run = link.Mux.RunAsync(incoming => _ = ServeAsync(link, incoming), CancellationToken.None);
            _ = ReportClosedAsync(link, run);
            var winner = await Task.WhenAny(run, goAway.Task, Task.Delay(Timeout.Infinite, stop)).ConfigureAwait(false);
            if (winner == goAway.Task)
            {
                var info = await goAway.Task.ConfigureAwait(false);
                _log($"link #{link.Number} to {link.Node}: GOAWAY ({info.Code}: {info.Reason}); {link.Mux.ActiveStreams} streams finish there, opening a new link");
                _rotation.Learn(TrustedSuggestions(info));
                leaving = link.Server;
                cursor = 0; // The freshest suggestions come first.
                continue;
            }
            if (winner == run)
            {
                var delay = Backoff(attempt++);
                cursor++;
                await DelayAsync(delay, stop).ConfigureAwait(false);
            }
        }
    }

    private List<Uri> TrustedSuggestions(GoAwayInfo info)
    {
        var trusted = new List<Uri>();
        foreach (var suggestion in info.SuggestedServers)
        {
            if (_suggestions.TryAccept(suggestion, out var server, out var why))
            {
                trusted.Add(server);
            }
            else
            {
                _log($"not following suggested server '{suggestion}': {why}");
            }
        }
        return trusted;
    }

    private TimeSpan Backoff(int attempt)
    {
        // Full jitter (delay uniform in [min, cap]) so a fleet of agents does not reconnect in lockstep.
        var cap = Math.Min(_options.ReconnectMaxDelay.TotalMilliseconds, _options.ReconnectMinDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        var min = _options.ReconnectMinDelay.TotalMilliseconds;
        return TimeSpan.FromMilliseconds(min + (Random.Shared.NextDouble() * Math.Max(0, cap - min)));
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<AgentLink> ConnectAsync(Uri server, CancellationToken stop)
    {
        var (socket, node) = await _connector.ConnectAsync(server, stop).ConfigureAwait(false);
        _rotation.Connected(server);
        var mux = new TunnelMux(new WebSocketFrameTransport(socket, server.ToString()), new MuxOptions
        {
            IsDialer = true,
            AcceptInboundStreams = true,
            MaxStreams = _options.MaxStreamsPerLink,
            KeepAliveInterval = _options.KeepAliveInterval,
            KeepAliveTimeout = _options.KeepAliveTimeout,
        });
        var link = new AgentLink(Interlocked.Increment(ref _linkCounter), server, node, mux, DateTimeOffset.UtcNow);
        lock (_sync)
        {
            _links.Add(link);
        }
        _log($"link #{link.Number} connected to {server} (node {node})");
        LinkConnected?.Invoke(link);
        return link;
    }

    private async Task ReportClosedAsync(AgentLink link, Task<LinkCloseInfo> run) => OnLinkClosed(link, await run.ConfigureAwait(false));

    private void OnLinkClosed(AgentLink link, LinkCloseInfo info)
    {
        lock (_sync)
        {
            _links.Remove(link);
        }
        _log($"link #{link.Number} to {link.Node} closed: {info}; {link.Mux.StreamsOpened} streams served, in {Bytes(link.Mux.BytesIn)}, out {Bytes(link.Mux.BytesOut)}");
    }

    private async Task ServeAsync(AgentLink link, IncomingStream incoming)
    {
        var target = incoming.Target;
        // The allow-list check, the resolution and the connect are one step (TargetDialer): the socket reaches
        // exactly the addresses that were checked.
        var dial = await _dialer.DialAsync(target).ConfigureAwait(false);
        if (dial.Socket is not { } socket)
        {
            Refuse(incoming, dial.Error, dial.Reason);
            return;
        }

        MuxStream stream;
        try
        {
            stream = incoming.Accept();
        }
        catch (InvalidOperationException)
        {
            socket.Dispose();
            return;
        }
        Interlocked.Increment(ref _streamsServed);
        var result = await Splice.RunAsync(new MuxStreamEnd(stream), new SocketEnd(socket)).ConfigureAwait(false);
        if (!result.Clean)
        {
            _log($"stream {stream.Id} to {target} on link #{link.Number} aborted: {result.Error}");
        }
    }

    private void Refuse(IncomingStream incoming, OpenErrorCode code, string reason)
    {
        Interlocked.Increment(ref _streamsRefused);
        _log($"refused stream {incoming.StreamId}: {reason}");
        incoming.Reject(code, reason);
    }

    internal static string Bytes(long bytes) => StatusPrinter.Bytes(bytes);
}
