using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Connect.Routing.Links;
using Connect.Routing.Security;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Piping;
using Connect.Tunnel.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Connect.Routing.NodeChannel;

/// <summary>
/// The receiving end of node-to-node data channels: other nodes open streams here for links whose sockets
/// terminate on this node. Each OPEN names a link and a target; the stream is opened on that link's
/// multiplexer and spliced to the channel stream, so a byte crosses exactly one node boundary and both
/// hops keep their credit windows (backpressure end to end).
/// </summary>
public sealed partial class NodeChannelServer(
    LinkRegistry links,
    NodeChannelSettings settings,
    NodeChannelSecret secret,
    ClusterTls tls,
    TimeProvider time,
    ILogger<NodeChannelServer> logger) : IHostedService
{
    /// <summary>
    /// Unauthenticated connections (TLS and HMAC handshakes under way) held at once; more are closed on accept. A
    /// stranger who can reach the data port can then hold at most this many sockets, each for the handshake timeout.
    /// </summary>
    public const int MaxPendingHandshakes = 64;

    private int _pendingHandshakes;
    private long _refusedOnAccept;

    private readonly CancellationTokenSource _stop = new();
    private readonly List<TunnelMux> _channels = [];
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;

    /// <summary>The bound port (known after start).</summary>
    public int Port { get; private set; }

    public int ChannelCount { get { lock (_channels) { return _channels.Count; } } }

    /// <summary>Connections accepted whose handshake has not finished yet.</summary>
    public int PendingHandshakes => Volatile.Read(ref _pendingHandshakes);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var address = IPAddress.Parse(settings.BindAddress);
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address, settings.Port));
        _listener.Listen(512);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptLoopAsync(_listener);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        _listener?.Dispose();
        await _accepting.ConfigureAwait(false);
        TunnelMux[] open;
        lock (_channels)
        {
            open = _channels.ToArray();
        }
        await Task.WhenAll(open.Select(c => c.CloseAsync(CloseCodes.GoingAway, "node stopping"))).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Drops the listener and every channel at once, as a crashed process would (tests and fault drills).</summary>
    public void Abort()
    {
        _stop.Cancel();
        _listener?.Dispose();
        lock (_channels)
        {
            foreach (var channel in _channels)
            {
                channel.Abort("node aborted");
            }
        }
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = ServeChannelAsync(socket);
        }
    }

    private async Task ServeChannelAsync(Socket socket)
    {
        var remote = socket.RemoteEndPoint?.ToString() ?? "?";
        if (Interlocked.Increment(ref _pendingHandshakes) > MaxPendingHandshakes)
        {
            Interlocked.Decrement(ref _pendingHandshakes);
            // The first and every 100th: a flood of connections must not become a flood of log lines.
            var refused = Interlocked.Increment(ref _refusedOnAccept);
            if (refused % 100 == 1)
            {
                Log.TooManyPending(logger, remote, MaxPendingHandshakes, refused);
            }
            socket.Dispose();
            return;
        }
        NodeChannelSockets.Tune(socket);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            using var deadline = new CancellationTokenSource(settings.HandshakeTimeout, time);
            using var both = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, deadline.Token);
            if (tls.IsEnabled)
            {
                // Mutual TLS with the cluster certificate first; the HMAC handshake then runs inside it as well.
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsServerAsync(tls.ServerOptions(), both.Token).ConfigureAwait(false);
            }
            if (await NodeChannelHandshake.AcceptAsync(stream, secret.Bytes, both.Token).ConfigureAwait(false) is null)
            {
                Log.HandshakeFailed(logger, remote, "wrong answer to the challenge");
                await stream.DisposeAsync().ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or EndOfStreamException or System.Security.Authentication.AuthenticationException)
        {
            Log.HandshakeFailed(logger, remote, e.Message);
            await stream.DisposeAsync().ConfigureAwait(false);
            return;
        }
        finally
        {
            Interlocked.Decrement(ref _pendingHandshakes);
        }

        var mux = new TunnelMux(new StreamFrameTransport(stream, remote, socket), NodeChannelSockets.MuxOptions(isDialer: false));
        lock (_channels)
        {
            _channels.Add(mux);
        }
        Log.ChannelAccepted(logger, remote);
        var closed = await mux.RunAsync(incoming => _ = RelayAsync(incoming)).ConfigureAwait(false);
        lock (_channels)
        {
            _channels.Remove(mux);
        }
        Log.ChannelClosed(logger, remote, closed.ToString());
    }

    private async Task RelayAsync(IncomingStream incoming)
    {
        if (!NodeChannelTargets.TryParse(incoming.Target, out var linkId, out var target))
        {
            incoming.Reject(OpenErrorCode.BadTarget, $"node channel OPEN '{incoming.Target}' is not 'link target'");
            return;
        }
        if (!links.TryGet(linkId, out var link) || link.Mux.IsClosed)
        {
            incoming.Reject(OpenErrorCode.GoingAway, $"link {linkId} is no longer on this node");
            return;
        }
        MuxStream toAgent;
        try
        {
            toAgent = await link.Mux.OpenStreamAsync(target).ConfigureAwait(false);
        }
        catch (StreamOpenException e)
        {
            // The agent's answer (allow-list, refused, DNS...) travels back unchanged.
            incoming.Reject(e.Code, e.Reason);
            return;
        }
        MuxStream toPeer;
        try
        {
            toPeer = incoming.Accept();
        }
        catch (InvalidOperationException)
        {
            toAgent.Reset(ResetCode.Cancel, "the requesting node went away");
            return;
        }
        await Splice.RunAsync(new MuxStreamEnd(toPeer), new MuxStreamEnd(toAgent)).ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "node channel from {Remote} accepted")]
        public static partial void ChannelAccepted(ILogger logger, string remote);

        [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "node channel from {Remote} closed: {CloseInfo}")]
        public static partial void ChannelClosed(ILogger logger, string remote, string closeInfo);

        [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "node channel from {Remote} refused: {Reason}")]
        public static partial void HandshakeFailed(ILogger logger, string remote, string reason);

        [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "node channel from {Remote} closed on accept: {Limit} handshakes already pending ({Refused} refused so far)")]
        public static partial void TooManyPending(ILogger logger, string remote, int limit, long refused);
    }
}
