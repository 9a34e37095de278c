using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Piping;
using Connect.Tunnel.Targets;
using Connect.Tunnel.Transport;

namespace Connect.Client;

/// <summary>The server said no in a way that retrying cannot fix (bad token, session not allowed).</summary>
public sealed class AgentRejectedException(string message) : Exception(message);

/// <summary>
/// The Connect agent: holds <see cref="AgentOptions.Links"/> tunnel links to the cluster, reconnects with
/// exponential backoff and jitter, follows GOAWAY by opening a new link before the old one is gone, and
/// answers each OPEN by dialling the target on this side, subject to the customer's allow-list.
/// </summary>
public sealed class ConnectAgent
{
    private readonly AgentOptions _options;
    private readonly Action<string> _log;
    private readonly object _sync = new();
    private readonly List<AgentLink> _links = [];
    private readonly X509Certificate2Collection? _trustedCa;
    private readonly TargetDialer _dialer;
    private long _linkCounter;
    private long _streamsServed;
    private long _streamsRefused;

    public ConnectAgent(AgentOptions options, Action<string>? log = null)
    {
        _options = options;
        _log = log ?? (line => Console.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {line}"));
        _dialer = new TargetDialer(options.Allow, options.Resolver, options.DialTimeout);
        if (options.CaFile is not null)
        {
            _trustedCa = [];
            _trustedCa.ImportFromPemFile(options.CaFile);
        }
    }

    /// <summary>One live link: which server and node it reached, and its multiplexer.</summary>
    public sealed record AgentLink(long Number, Uri Server, string Node, TunnelMux Mux, DateTimeOffset Since);

    /// <summary>Links that are connected now (including ones finishing after GOAWAY).</summary>
    public IReadOnlyList<AgentLink> Links { get { lock (_sync) { return _links.ToArray(); } } }

    public long StreamsServed => Interlocked.Read(ref _streamsServed);

    public long StreamsRefused => Interlocked.Read(ref _streamsRefused);

    /// <summary>Raised after a link is established.</summary>
    public event Action<AgentLink>? LinkConnected;

    /// <summary>Runs until <paramref name="stop"/> fires, then drains: no new streams, open ones finish within the grace, links close.</summary>
    /// <exception cref="AgentRejectedException">The server rejected the token or the session.</exception>
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
        var status = _options.StatusInterval > TimeSpan.Zero ? StatusLoopAsync(fatal.Token) : Task.CompletedTask;
        try
        {
            await Task.WhenAll(slots).ConfigureAwait(false);
        }
        finally
        {
            await fatal.CancelAsync().ConfigureAwait(false);
            await status.ConfigureAwait(false);
        }
        await DrainAsync().ConfigureAwait(false);
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
        var serverIndex = slot % _options.Servers.Count;
        Uri? preferred = null;
        while (!stop.IsCancellationRequested)
        {
            var server = preferred ?? PickServer(ref serverIndex);
            preferred = null;
            AgentLink link;
            try
            {
                link = await ConnectAsync(server, stop).ConfigureAwait(false);
                attempt = 0;
            }
            catch (AgentRejectedException e)
            {
                _log($"link slot {slot}: {e.Message}; not retrying");
                await fatal.CancelAsync().ConfigureAwait(false);
                throw;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                var delay = Backoff(attempt++);
                _log($"cannot reach {server}: {Describe(e)}; retrying in {delay.TotalSeconds:0.0} s");
                serverIndex++;
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
                preferred = PickAfterGoAway(info, link.Server, ref serverIndex);
                continue;
            }
            if (winner == run)
            {
                var delay = Backoff(attempt++);
                serverIndex++;
                await DelayAsync(delay, stop).ConfigureAwait(false);
            }
        }
    }

    private Uri PickServer(ref int index)
    {
        // Prefer a server that no other slot is connected to, so --links 2 spreads over two nodes.
        var inUse = Links.Where(l => !l.Mux.IsGoingAway).Select(l => l.Server).ToHashSet();
        for (var i = 0; i < _options.Servers.Count; i++)
        {
            var candidate = _options.Servers[(index + i) % _options.Servers.Count];
            if (!inUse.Contains(candidate))
            {
                index += i;
                return candidate;
            }
        }
        return _options.Servers[index % _options.Servers.Count];
    }

    private Uri PickAfterGoAway(GoAwayInfo info, Uri leaving, ref int index)
    {
        foreach (var suggestion in info.SuggestedServers)
        {
            try
            {
                var uri = AgentCommandLine.ParseServer(suggestion);
                if (uri != leaving)
                {
                    return uri;
                }
            }
            catch (ArgumentException)
            {
                _log($"ignoring malformed suggested server '{suggestion}'");
            }
        }
        for (var i = 1; i <= _options.Servers.Count; i++)
        {
            var candidate = _options.Servers[(index + i) % _options.Servers.Count];
            if (candidate != leaving)
            {
                index += i;
                return candidate;
            }
        }
        // Only one server known: reconnect to it (behind a load balancer that reaches another node).
        return leaving;
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
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _options.Token);
        socket.Options.KeepAliveInterval = TimeSpan.Zero; // connect.v1 PING frames do keep-alive, both ways.
        socket.Options.CollectHttpResponseDetails = true;
        if (_options.InsecureSkipVerify)
        {
            socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (_trustedCa is not null)
        {
            socket.Options.RemoteCertificateValidationCallback = ValidateWithCa;
        }

        var uri = new UriBuilder(server) { Query = "session=" + Uri.EscapeDataString(_options.Session) }.Uri;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.BadRequest)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            throw new AgentRejectedException($"{server} rejected the agent with {(int)status} {status}: " +
                (status == HttpStatusCode.Forbidden ? $"the token may not serve session '{_options.Session}'" : status == HttpStatusCode.Unauthorized ? "the token is not valid" : "bad request (session name?)"));
        }
        catch (Exception) when (!stop.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            socket.Dispose();
            throw new TimeoutException($"no WebSocket handshake within {_options.ConnectTimeout.TotalSeconds:0} s");
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var node = socket.HttpResponseHeaders?.TryGetValue("Connect-Node", out var values) == true ? string.Join(",", values) : server.Authority;
        socket.HttpResponseHeaders = null;
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

    private bool ValidateWithCa(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false; // Name mismatch or no certificate: the CA does not change that.
        }
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_trustedCa!);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return custom.Build(new X509Certificate2(certificate));
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

    private async Task DrainAsync()
    {
        var links = Links;
        if (links.Count == 0)
        {
            return;
        }
        var open = links.Sum(l => l.Mux.ActiveStreams);
        _log($"stopping: no new streams; waiting for {open} open streams (up to {_options.ShutdownGrace.TotalSeconds:0} s)");
        foreach (var link in links)
        {
            link.Mux.GoAway(GoAwayCode.Shutdown, "agent stopping", []);
        }
        using var grace = new CancellationTokenSource(_options.ShutdownGrace);
        await Task.WhenAll(links.Select(l => WaitIdleAsync(l.Mux, grace.Token))).ConfigureAwait(false);
        var left = links.Sum(l => l.Mux.ActiveStreams);
        if (left > 0)
        {
            _log($"grace over: closing {left} streams still open");
        }
        await Task.WhenAll(links.Select(l => l.Mux.CloseAsync(CloseCodes.Normal, "agent stopped"))).ConfigureAwait(false);
    }

    private static async Task WaitIdleAsync(TunnelMux mux, CancellationToken cancellationToken)
    {
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(TunnelMux m)
        {
            if (m.ActiveStreams == 0 || m.IsClosed)
            {
                idle.TrySetResult();
            }
        }
        mux.StreamsChanged += Check;
        try
        {
            Check(mux);
            await idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            mux.StreamsChanged -= Check;
        }
    }

    private async Task StatusLoopAsync(CancellationToken stop)
    {
        var last = string.Empty;
        try
        {
            using var timer = new PeriodicTimer(_options.StatusInterval);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var line = string.Join(" | ", Links.Select(l =>
                    $"link #{l.Number} {l.Node}{(l.Mux.IsGoingAway ? " (going away)" : "")}: {l.Mux.ActiveStreams} streams open, {l.Mux.StreamsOpened} served, in {Bytes(l.Mux.BytesIn)}, out {Bytes(l.Mux.BytesOut)}"));
                if (line.Length == 0)
                {
                    line = "no link connected";
                }
                if (line != last)
                {
                    _log(line);
                    last = line;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private string Describe(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is System.Security.Authentication.AuthenticationException)
            {
                // Refuse, say why and how to fix it, and keep retrying: the server's certificate may be fixed or rotated
                // without restarting every agent, and one misconfigured node behind a load balancer must not stop the agent.
                return $"the server's TLS certificate is not trusted ({inner.Message}); " +
                    (_trustedCa is null ? "pass --ca-file with the CA that signed it (or --insecure, for development only)" : $"it does not chain to the CA in --ca-file {_options.CaFile}, or its name does not match the URL");
            }
        }
        return DescribePlain(e);
    }

    private static string DescribePlain(Exception e) => e switch
    {
        WebSocketException { InnerException: { } inner } w => $"{w.Message} ({inner.Message})",
        _ => e.Message,
    };

    internal static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / 1048576.0:0.0} MiB",
        _ => $"{bytes / 1073741824.0:0.00} GiB",
    };
}
