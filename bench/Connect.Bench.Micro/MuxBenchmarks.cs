using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;

namespace Connect.Bench.Micro;

/// <summary>
/// The multiplexer hot path: one stream opened by the server side of a link, 1 MiB written into its MuxStream
/// in chunks of <see cref="ChunkSize"/> and read out of the agent side's MuxStream, over a real loopback TCP
/// connection carrying either WebSocket messages (agent links) or plain frames (node channel).
/// Allocated bytes cover both multiplexers, both transports and the credit (WINDOW) traffic.
/// </summary>
[MemoryDiagnoser]
public class MuxBenchmarks
{
    private const int TotalBytes = 1 << 20;
    private TunnelMux _server = null!;
    private TunnelMux _agent = null!;
    private MuxStream _writer = null!;
    private MuxStream _reader = null!;
    private byte[] _chunk = [];
    private readonly byte[] _readBuffer = new byte[64 * 1024];

    public enum Kind
    {
        WebSocket,
        Stream,
    }

    [Params(Kind.WebSocket, Kind.Stream)]
    public Kind Transport { get; set; }

    [Params(1024, 32 * 1024)]
    public int ChunkSize { get; set; }

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        _chunk = new byte[ChunkSize];
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        var dialer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptSocketAsync();
        await dialer.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var accepted = await accept;
        accepted.NoDelay = true;
        listener.Stop();

        var agentOptions = new MuxOptions { IsDialer = true, AcceptInboundStreams = true, KeepAliveInterval = TimeSpan.Zero };
        var serverOptions = new MuxOptions { IsDialer = false, AcceptInboundStreams = false, KeepAliveInterval = TimeSpan.Zero };
        _agent = new TunnelMux(On(dialer, isDialer: true), agentOptions);
        _server = new TunnelMux(On(accepted, isDialer: false), serverOptions);
        var incoming = Channel.CreateUnbounded<MuxStream>();
        _ = _agent.RunAsync(i => incoming.Writer.TryWrite(i.Accept()));
        _ = _server.RunAsync();
        _writer = await _server.OpenStreamAsync("bench:1");
        _reader = await incoming.Reader.ReadAsync();
    }

    private IFrameTransport On(Socket socket, bool isDialer) => Transport == Kind.WebSocket
        ? new WebSocketFrameTransport(WebSocket.CreateFromStream(new NetworkStream(socket, ownsSocket: true), new WebSocketCreationOptions
        {
            IsServer = !isDialer,
            SubProtocol = ProtocolLimits.SubProtocol,
            KeepAliveInterval = TimeSpan.Zero,
        }), "ws")
        : new StreamFrameTransport(new NetworkStream(socket, ownsSocket: true), "tcp", socket);

    [Benchmark(Description = "1 MiB server -> agent through MuxStream")]
    public async Task<long> WriteAndRead()
    {
        var write = Task.Run(async () =>
        {
            for (var sent = 0; sent < TotalBytes; sent += ChunkSize)
            {
                await _writer.WriteAsync(_chunk);
            }
        });
        long got = 0;
        while (got < TotalBytes)
        {
            got += await _reader.ReadAsync(_readBuffer);
        }
        await write;
        return got;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _agent.Abort("done");
        _server.Abort("done");
    }
}
