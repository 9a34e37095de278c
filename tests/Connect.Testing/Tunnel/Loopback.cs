using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Transport;

namespace Connect.Testing.Tunnel;

/// <summary>Which real transport a test runs over.</summary>
public enum TransportKind
{
    /// <summary>RFC 6455 WebSockets (client and server ends) over a loopback TCP connection: the agent link.</summary>
    WebSocket,
    /// <summary>Frames back to back on a loopback TCP connection: the node-to-node channel.</summary>
    Stream,
}

/// <summary>Real loopback connections and the transports on them.</summary>
public static class Loopback
{
    /// <summary>A connected pair of TCP sockets on 127.0.0.1: the one that dialled and the one that was accepted.</summary>
    public static async Task<(Socket Dialer, Socket Accepted)> ConnectedSocketsAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        try
        {
            var dialer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var accept = listener.AcceptSocketAsync();
            await dialer.ConnectAsync((IPEndPoint)listener.LocalEndpoint).WaitAsync(Timeouts.Default);
            var accepted = await accept.WaitAsync(Timeouts.Default);
            accepted.NoDelay = true;
            return (dialer, accepted);
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>A WebSocket end on a connected socket, as after a connect.v1 handshake (no keep-alive of its own).</summary>
    public static WebSocket WebSocketOn(Socket socket, bool isServer) =>
        WebSocket.CreateFromStream(new NetworkStream(socket, ownsSocket: true), new WebSocketCreationOptions
        {
            IsServer = isServer,
            SubProtocol = ProtocolLimits.SubProtocol,
            KeepAliveInterval = TimeSpan.Zero,
        });

    /// <summary>A frame transport on one end of a connection; the dialler is the WebSocket client.</summary>
    public static IFrameTransport TransportOn(TransportKind kind, Socket socket, bool isDialer) => kind switch
    {
        TransportKind.WebSocket => new WebSocketFrameTransport(WebSocketOn(socket, isServer: !isDialer), isDialer ? "ws-client" : "ws-server"),
        _ => new StreamFrameTransport(new NetworkStream(socket, ownsSocket: true), isDialer ? "tcp-dialer" : "tcp-acceptor", socket),
    };

    public static async Task<(IFrameTransport Dialer, IFrameTransport Accepted)> TransportPairAsync(TransportKind kind)
    {
        var (dialer, accepted) = await ConnectedSocketsAsync();
        return (TransportOn(kind, dialer, isDialer: true), TransportOn(kind, accepted, isDialer: false));
    }
}

/// <summary>Bounds for every wait in these tests.</summary>
public static class Timeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan Bulk = TimeSpan.FromSeconds(40);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="what"/> after the bound.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? Default);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(2);
        }
    }
}
