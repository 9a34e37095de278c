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

    private readonly ConcurrentDictionary<string, Lazy<Task<TunnelMux>>> _channels = new();

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
        for (var attempt = 0; ; attempt++)
        {
            var lazy = _channels.GetOrAdd(endpoint, e => new Lazy<Task<TunnelMux>>(() => DialAsync(e)));
            try
            {
                var mux = await lazy.Value.ConfigureAwait(false);
                if (!mux.IsGoingAway || attempt > 0)
                {
                    return mux;
                }
                _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or EndOfStreamException or System.Security.Authentication.AuthenticationException)
            {
                _channels.TryRemove(new KeyValuePair<string, Lazy<Task<TunnelMux>>>(endpoint, lazy));
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
        Forget(endpoint, mux);
        Log.ChannelClosed(logger, endpoint, closed.ToString());
    }

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

    public static MuxOptions MuxOptions(bool isDialer) => new()
    {
        IsDialer = isDialer,
        AcceptInboundStreams = !isDialer,
        MaxStreams = 65536,
        KeepAliveInterval = TimeSpan.FromSeconds(10),
        KeepAliveTimeout = TimeSpan.FromSeconds(30),
    };
}

/// <summary>The shared secret of node channels, resolved once from configuration.</summary>
public sealed class NodeChannelSecret(byte[] bytes)
{
    public byte[] Bytes { get; } = bytes;
}
