using System.Collections.Concurrent;
using Connect.Routing.Streams;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Cluster.Tests.Support;

/// <summary>
/// The node channel as a partition leaves it: opens towards a cut data endpoint hang like a blackholed TCP connect
/// (the pool's 5 s connect timeout) and then fail as an unavailable channel does; streams already open to it are reset.
/// Everything else goes to the real <see cref="Connect.Host.NodeChannel.NodeChannelPool"/>.
/// </summary>
public sealed class CuttableStreamOpener(IRemoteStreamOpener inner) : IRemoteStreamOpener
{
    private static readonly TimeSpan BlackholedConnect = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, bool> _cut = new();
    private readonly ConcurrentDictionary<MuxStream, string> _open = new();

    public void Cut(string dataEndpoint)
    {
        _cut[dataEndpoint] = true;
        foreach (var (stream, endpoint) in _open)
        {
            if (endpoint == dataEndpoint)
            {
                _open.TryRemove(stream, out _);
                try
                {
                    stream.Reset(ResetCode.ConnectionReset, "network partition");
                }
                catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
                {
                    // Already ended.
                }
            }
        }
    }

    public void Heal(string dataEndpoint) => _cut.TryRemove(dataEndpoint, out _);

    public async Task<MuxStream> OpenAsync(string dataEndpoint, string linkId, string target, CancellationToken cancellationToken)
    {
        if (_cut.ContainsKey(dataEndpoint))
        {
            await Task.Delay(BlackholedConnect, cancellationToken);
            throw new StreamOpenException(OpenErrorCode.GoingAway, $"node channel to {dataEndpoint} unavailable: connect timed out (partition)");
        }
        var stream = await inner.OpenAsync(dataEndpoint, linkId, target, cancellationToken);
        _open[stream] = dataEndpoint;
        return stream;
    }
}
