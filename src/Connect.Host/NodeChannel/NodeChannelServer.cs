using System.Net;
using System.Net.Sockets;
using Connect.Actors.Links;
using Connect.Host.Configuration;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Piping;
using Connect.Tunnel.Transport;
using Microsoft.Extensions.Options;

namespace Connect.Host.NodeChannel;

/// <summary>
/// The receiving end of node-to-node data channels: other nodes open streams here for links whose sockets
/// terminate on this node. Each OPEN names a link and a target; the stream is opened on that link's
/// multiplexer and spliced to the channel stream, so a byte crosses exactly one node boundary and both
/// hops keep their credit windows (backpressure end to end).
/// </summary>
public sealed partial class NodeChannelServer(LinkRegistry links, IOptions<ConnectSettings> options, NodeChannelSecret secret, ILogger<NodeChannelServer> logger) : IHostedService
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly List<TunnelMux> _channels = [];
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;

    /// <summary>The bound port (known after start).</summary>
    public int Port { get; private set; }

    public int ChannelCount { get { lock (_channels) { return _channels.Count; } } }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var address = IPAddress.Parse(settings.BindAddress);
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address, settings.Cluster.DataPort));
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
        NodeChannelSockets.Tune(socket);
        var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(HandshakeTimeout);
            if (!await NodeChannelHandshake.AcceptAsync(stream, secret.Bytes, timeout.Token).ConfigureAwait(false))
            {
                Log.HandshakeFailed(logger, remote, "wrong answer to the challenge");
                await stream.DisposeAsync().ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or EndOfStreamException)
        {
            Log.HandshakeFailed(logger, remote, e.Message);
            await stream.DisposeAsync().ConfigureAwait(false);
            return;
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
    }
}
