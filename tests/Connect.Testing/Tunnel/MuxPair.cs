using System.Threading.Channels;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Testing.Tunnel;

/// <summary>
/// Two running multiplexers on a real loopback link, shaped like an agent link: the agent dialled
/// (odd stream ids) and accepts OPENs; the server opens streams (even ids) and accepts none.
/// The agent's targets: "refuse..." is refused with <see cref="OpenErrorCode.ConnectionRefused"/>,
/// "echo..." echoes every byte and answers FIN with FIN, anything else is accepted and handed to the
/// test through <see cref="AcceptedAsync"/>.
/// </summary>
public sealed class MuxPair : IAsyncDisposable
{
    private readonly Channel<MuxStream> _accepted = Channel.CreateUnbounded<MuxStream>();
    private readonly List<Task> _echoes = new();

    private MuxPair(TunnelMux agent, TunnelMux server)
    {
        Agent = agent;
        Server = server;
    }

    public TunnelMux Agent { get; }

    public TunnelMux Server { get; }

    public Task<LinkCloseInfo> AgentRun { get; private set; } = null!;

    public Task<LinkCloseInfo> ServerRun { get; private set; } = null!;

    public static MuxOptions AgentOptions => new() { IsDialer = true, AcceptInboundStreams = true, KeepAliveInterval = TimeSpan.Zero };

    public static MuxOptions ServerOptions => new() { IsDialer = false, AcceptInboundStreams = false, KeepAliveInterval = TimeSpan.Zero };

    public static async Task<MuxPair> StartAsync(TransportKind kind, Func<MuxOptions, MuxOptions>? agent = null, Func<MuxOptions, MuxOptions>? server = null)
    {
        var (dialer, accepted) = await Loopback.TransportPairAsync(kind);
        var pair = new MuxPair(
            new TunnelMux(dialer, (agent ?? (o => o))(AgentOptions)),
            new TunnelMux(accepted, (server ?? (o => o))(ServerOptions)));
        pair.AgentRun = pair.Agent.RunAsync(pair.OnIncoming);
        pair.ServerRun = pair.Server.RunAsync();
        return pair;
    }

    /// <summary>The next stream the agent accepted for a target that is neither "echo" nor "refuse".</summary>
    public Task<MuxStream> AcceptedAsync() => _accepted.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

    private void OnIncoming(IncomingStream incoming)
    {
        if (incoming.Target.StartsWith("refuse", StringComparison.Ordinal))
        {
            incoming.Reject(OpenErrorCode.ConnectionRefused, $"connection refused by {incoming.Target}");
        }
        else if (incoming.Target.StartsWith("echo", StringComparison.Ordinal))
        {
            var stream = incoming.Accept();
            lock (_echoes)
            {
                _echoes.Add(Task.Run(() => EchoAsync(stream)));
            }
        }
        else
        {
            _accepted.Writer.TryWrite(incoming.Accept());
        }
    }

    private static async Task EchoAsync(MuxStream stream)
    {
        var buffer = new byte[32 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read));
            }
            await stream.CompleteWritesAsync();
        }
        catch (StreamResetException)
        {
            // The test reset the stream or closed the link: the echo ends with it.
        }
    }

    /// <summary>Closes the link from the server side and waits for both ends; both RunAsync must return, never throw.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.CloseAsync(CloseCodes.Normal, "test over").WaitAsync(Timeouts.Default);
            await Task.WhenAll(AgentRun, ServerRun).WaitAsync(Timeouts.Default);
            Task[] echoes;
            lock (_echoes)
            {
                echoes = _echoes.ToArray();
            }
            await Task.WhenAll(echoes).WaitAsync(Timeouts.Default);
        }
        finally
        {
            Agent.Abort("test teardown");
            Server.Abort("test teardown");
        }
    }
}

/// <summary>One running multiplexer whose peer is a <see cref="RawPeer"/> driven by the test.</summary>
public sealed class RawLink : IAsyncDisposable
{
    private RawLink(TunnelMux mux, RawPeer raw, Task<LinkCloseInfo> run)
    {
        Mux = mux;
        Raw = raw;
        Run = run;
    }

    public TunnelMux Mux { get; }

    public RawPeer Raw { get; }

    /// <summary>The multiplexer's RunAsync: must complete with a <see cref="LinkCloseInfo"/>, never fault.</summary>
    public Task<LinkCloseInfo> Run { get; }

    /// <summary>Starts a multiplexer with <paramref name="options"/> on one end of a loopback link and a raw peer on the other.</summary>
    public static async Task<RawLink> StartAsync(TransportKind kind, MuxOptions options, Action<IncomingStream>? onIncoming = null)
    {
        var (dialer, accepted) = await Loopback.ConnectedSocketsAsync();
        var muxSocket = options.IsDialer ? dialer : accepted;
        var rawSocket = options.IsDialer ? accepted : dialer;
        var mux = new TunnelMux(Loopback.TransportOn(kind, muxSocket, options.IsDialer), options);
        var raw = RawPeer.On(kind, rawSocket, isDialer: !options.IsDialer);
        return new RawLink(mux, raw, mux.RunAsync(onIncoming));
    }

    /// <summary>Waits for RunAsync to return (it must not throw) and checks the close code the link ended with.</summary>
    public async Task<LinkCloseInfo> ExpectClosedAsync(int code)
    {
        var info = await Run.WaitAsync(Timeouts.Default);
        Assert.Equal(code, info.Code);
        Assert.Same(info, await Mux.Closed.WaitAsync(Timeouts.Default));
        return info;
    }

    public async ValueTask DisposeAsync()
    {
        Mux.Abort("test teardown");
        await Raw.DisposeAsync();
        await Run.WaitAsync(Timeouts.Default);
    }
}
