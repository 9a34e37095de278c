using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Connect.Routing.Security;
using Connect.Routing.Streams;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;
using Microsoft.Extensions.Logging;

namespace Connect.Routing.NodeChannel;

/// <summary>
/// The dialling end of node-to-node data channels: one authenticated TCP connection per peer node, opened on
/// first use and multiplexing every stream this node sends there (same frames and windows as an agent link).
/// A channel that cannot be had surfaces as GoingAway, so the stream broker asks the session for another link.
/// A channel that is going away (its peer drains, or it sent GOAWAY because its stream ids ran out) takes no new
/// streams: the next open dials a fresh channel while the old one finishes its streams and closes.
/// </summary>
public sealed partial class NodeChannelPool(NodeChannelSecret secret, ClusterTls tls, ILogger<NodeChannelPool> logger) : IRemoteStreamOpener, IAsyncDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long opens to a peer whose channel went silent (keep-alive timeout) or could not be dialled are refused at
    /// once: a frozen node still completes TCP connects (its kernel answers), so a fresh dial would wait the whole
    /// <see cref="ConnectTimeout"/> in the handshake, for every request that still names one of its links.
    /// </summary>
    public static readonly TimeSpan SilentPeerBackoff = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Lazy<Task<TunnelMux>>> _channels = new();
    private readonly ConcurrentDictionary<string, long> _silentSince = new();

    /// <summary>Clock of <see cref="SilentPeerBackoff"/>.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public int ChannelCount => _channels.Count;

    /// <summary>Multiplexer settings of the channels this pool dials (tests start their stream ids near the end).</summary>
    public MuxOptions ChannelOptions { get; init; } = NodeChannelSockets.MuxOptions(isDialer: true);

    public async Task<MuxStream> OpenAsync(string dataEndpoint, string linkId, string target, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var mux = await GetChannelAsync(dataEndpoint).WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await mux.OpenStreamAsync(NodeChannelTargets.Format(linkId, target), cancellationToken).ConfigureAwait(false);
            }
            catch (StreamOpenException e) when (WentSilent(mux))
            {
                // The peer went silent with this open pending (the local close fails it as Internal, which the broker
                // would take for the agent's refusal): a fresh dial would only wait in the handshake. Refuse it as
                // GoingAway, so the broker asks for another link, and the next opens at once for a while.
                _silentSince[dataEndpoint] = Time.GetTimestamp();
                throw new StreamOpenException(OpenErrorCode.GoingAway, $"node channel to {dataEndpoint} closed with the open pending: the peer went silent ({e.Reason})");
            }
            catch (StreamOpenException) when (mux.IsGoingAway && attempt == 0)
            {
                // The channel itself is going away (peer stopping, or its ids ran out with an earlier open that
                // raced this one): forget it and dial once more.
                Forget(dataEndpoint, mux);
            }
        }
    }

    private async Task<TunnelMux> GetChannelAsync(string endpoint)
    {
        if (_silentSince.TryGetValue(endpoint, out var since))
        {
            if (Time.GetElapsedTime(since) < SilentPeerBackoff)
            {
                throw new StreamOpenException(OpenErrorCode.GoingAway, $"node channel to {endpoint} unavailable: the peer went silent {Time.GetElapsedTime(since).TotalSeconds:0.0} s ago");
            }
            _silentSince.TryRemove(new KeyValuePair<string, long>(endpoint, since));
        }
        for (var attempt = 0; ; attempt++)
        {
            var lazy = _channels.GetOrAdd(endpoint, e => new Lazy<Task<TunnelMux>>(() => DialAsync(e)));
            try
            {
                var mux = await lazy.Value.ConfigureAwait(false);
                if (WentSilent(mux))
                {
                    // Closed for silence a moment ago (its streams are reset before the pool forgets it): no redial.
                    _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
                    _silentSince[endpoint] = Time.GetTimestamp();
                    throw new StreamOpenException(OpenErrorCode.GoingAway, $"node channel to {endpoint} unavailable: the peer went silent ({mux.CloseInfo!.Reason})");
                }
                if (!mux.IsGoingAway || attempt > 0)
                {
                    return mux;
                }
                _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or EndOfStreamException or System.Security.Authentication.AuthenticationException)
            {
                _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
                if (e is OperationCanceledException)
                {
                    // The dial timed out (a refused one fails at once and needs no backoff: a restarted node may be back).
                    _silentSince[endpoint] = Time.GetTimestamp();
                }
                Log.DialFailed(logger, endpoint, e.Message);
                throw new StreamOpenException(OpenErrorCode.GoingAway, $"node channel to {endpoint} unavailable: {e.Message}");
            }
        }
    }

    private async Task<TunnelMux> DialAsync(string endpoint)
    {
        var (host, port) = Split(endpoint);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        NodeChannelSockets.Tune(socket);
        using var timeout = new CancellationTokenSource(ConnectTimeout);
        Stream stream;
        try
        {
            await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (tls.IsEnabled)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(tls.ClientOptions(host), timeout.Token).ConfigureAwait(false);
            }
            await NodeChannelHandshake.DialAsync(stream, secret.Bytes, timeout.Token).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var mux = new TunnelMux(new StreamFrameTransport(stream, endpoint, socket), ChannelOptions);
        _ = RunAsync(endpoint, mux);
        Log.ChannelOpened(logger, endpoint);
        return mux;
    }

    private async Task RunAsync(string endpoint, TunnelMux mux)
    {
        var closed = await mux.RunAsync().ConfigureAwait(false);
        if (WentSilent(mux))
        {
            // Every stream on it was just reset (LinkLost), so their requests are retried; the next opens must not
            // wait for a dial to the same silent peer.
            _silentSince[endpoint] = Time.GetTimestamp();
        }
        Forget(endpoint, mux);
        Log.ChannelClosed(logger, endpoint, closed.ToString());
    }

    /// <summary>True when this node closed the channel because its peer sent nothing for the keep-alive timeout.</summary>
    private static bool WentSilent(TunnelMux mux) => mux.CloseInfo is { Code: CloseCodes.KeepAliveTimeout, ByPeer: false };

    private void Forget(string endpoint, TunnelMux mux)
    {
        if (_channels.TryGetValue(endpoint, out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully && ReferenceEquals(lazy.Value.Result, mux))
        {
            _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
        }
    }

    private static (string Host, int Port) Split(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        var host = endpoint[..colon].Trim('[', ']');
        return (host, int.Parse(endpoint[(colon + 1)..]));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in _channels.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                var mux = await lazy.Value.ConfigureAwait(false);
                await mux.CloseAsync(CloseCodes.GoingAway, "node stopping").ConfigureAwait(false);
            }
        }
        _channels.Clear();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4011, Level = LogLevel.Information, Message = "node channel to {Endpoint} opened")]
        public static partial void ChannelOpened(ILogger logger, string endpoint);

        [LoggerMessage(EventId = 4012, Level = LogLevel.Information, Message = "node channel to {Endpoint} closed: {CloseInfo}")]
        public static partial void ChannelClosed(ILogger logger, string endpoint, string closeInfo);

        [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "node channel to {Endpoint} could not be opened: {Reason}")]
        public static partial void DialFailed(ILogger logger, string endpoint, string reason);
    }
}

/// <summary>Socket and multiplexer settings shared by both ends of a node channel.</summary>
public static class NodeChannelSockets
{
    public static void Tune(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = 256 * 1024;
        socket.ReceiveBufferSize = 256 * 1024;
    }

    /// <summary>
    /// A PING every second, and a channel whose peer sent nothing for <see cref="SilenceLimit"/> is closed, which resets
    /// its streams (LinkLost). A frozen peer (SIGSTOP, a long GC pause, a stalled VM) keeps its TCP connections open
    /// and its kernel even accepts our bytes, so without this a request written on a pooled stream to it waits for a
    /// response until the node is downed (20-45 s): that was the request FreezeTests saw hang (issue 13, finding 1).
    /// Reset, an idempotent request is sent again on another link. Akka's own failure detector gives up on a silent
    /// node in about the same time (3 s acceptable heartbeat pause); a live peer's PINGs are answered by its read loop.
    /// </summary>
    public static MuxOptions MuxOptions(bool isDialer) => new()
    {
        IsDialer = isDialer,
        AcceptInboundStreams = !isDialer,
        MaxStreams = 65536,
        KeepAliveInterval = TimeSpan.FromSeconds(1),
        KeepAliveTimeout = SilenceLimit,
        // No 64 KiB frames for a stream alone on a channel (as agent links send): one channel carries every proxied
        // stream between two nodes, and with them the fairness p99 across nodes rose (bench/ANALYSIS.md, issue 15).
        SoloDataChunk = 0,
    };

    /// <summary>How long a node channel may hear nothing from its peer before it is closed as dead.</summary>
    public static readonly TimeSpan SilenceLimit = TimeSpan.FromSeconds(5);
}

/// <summary>The shared secret of node channels, resolved once from configuration.</summary>
public sealed class NodeChannelSecret(byte[] bytes)
{
    public byte[] Bytes { get; } = bytes;
}
