using Connect.Testing.Tunnel;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Tests;

/// <summary>How a stream ends as the peer sees it: a stream that finished normally is not reported as reset.</summary>
public class StreamEndTests
{
    [Theory]
    [MemberData(nameof(TunnelMuxTests.Transports), MemberType = typeof(TunnelMuxTests))]
    public async Task Disposing_after_the_peers_FIN_ends_with_FIN_not_RST(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var opened = link.Server.OpenStreamAsync("http-1.0-target").WaitAsync(Timeouts.Default);
        var agentSide = await link.AcceptedAsync().WaitAsync(Timeouts.Default);
        var serverSide = await opened;

        // The target answers and closes (HTTP/1.0): the agent half-closes; the server reads to the end and disposes
        // without half-closing first, as an HTTP client's connection does.
        await agentSide.WriteAsync("HTTP/1.0 200 OK\r\n\r\nhi"u8.ToArray()).AsTask().WaitAsync(Timeouts.Default);
        await agentSide.CompleteWritesAsync();
        var response = new MemoryStream();
        await serverSide.CopyToAsync(response).WaitAsync(Timeouts.Default);
        await serverSide.DisposeAsync();

        // The agent's read side sees the end of the stream (FIN), not an exception (RST).
        var rest = new MemoryStream();
        await agentSide.CopyToAsync(rest).WaitAsync(Timeouts.Default);
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "both ends to forget the finished stream");
        Assert.Equal(0, link.Agent.ResetsReceived);
        Assert.Equal(0, link.Server.ResetsReceived);
        await agentSide.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(TunnelMuxTests.Transports), MemberType = typeof(TunnelMuxTests))]
    public async Task Disposing_before_the_peer_finished_still_resets(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var opened = link.Server.OpenStreamAsync("slow-target").WaitAsync(Timeouts.Default);
        var agentSide = await link.AcceptedAsync().WaitAsync(Timeouts.Default);
        var serverSide = await opened;
        await serverSide.DisposeAsync();

        var failure = await Assert.ThrowsAsync<StreamResetException>(() => agentSide.CopyToAsync(Stream.Null).WaitAsync(Timeouts.Default));
        Assert.True(failure.ByPeer);
        Assert.Equal(1, link.Agent.ResetsReceived);
        await agentSide.DisposeAsync();
    }
}
