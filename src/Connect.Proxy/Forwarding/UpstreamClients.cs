using System.Collections.Concurrent;
using System.Net;
using Connect.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// One HTTP/1.1 client per session whose "connections" are tunnel streams (the handler's ConnectCallback opens a
/// stream through the session's tunnel), so absolute-form requests reuse streams with keep-alive like any
/// forward proxy reuses upstream connections. Clients unused for a while are disposed.
/// </summary>
public sealed class UpstreamClients : IDisposable
{
    private static readonly TimeSpan UnusedLifetime = TimeSpan.FromMinutes(2);

    private readonly ConcurrentDictionary<string, Entry> _clients = new();
    private readonly ProxyGate _gate;
    private readonly ProxyOptions _options;
    private readonly Timer _sweeper;

    public UpstreamClients(ProxyGate gate, IOptions<ProxyOptions> options)
    {
        _gate = gate;
        _options = options.Value;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
    }

    private sealed class Entry(HttpMessageInvoker invoker)
    {
        public HttpMessageInvoker Invoker { get; } = invoker;

        public long LastUsedTicks = Environment.TickCount64;
    }

    public HttpMessageInvoker For(string sessionId)
    {
        var entry = _clients.GetOrAdd(sessionId, id => new Entry(Create(id)));
        Volatile.Write(ref entry.LastUsedTicks, Environment.TickCount64);
        return entry.Invoker;
    }

    private HttpMessageInvoker Create(string sessionId)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ActivityHeadersPropagator = null,
            PooledConnectionIdleTimeout = _options.UpstreamIdleTimeout,
            PooledConnectionLifetime = _options.UpstreamConnectionLifetime,
            ConnectTimeout = Timeout.InfiniteTimeSpan, // the stream broker bounds the wait for a tunnel
            ConnectCallback = async (context, cancellationToken) =>
            {
                var host = context.DnsEndPoint.Host;
                var target = host.Contains(':') && !host.StartsWith('[') ? $"[{host}]:{context.DnsEndPoint.Port}" : $"{host}:{context.DnsEndPoint.Port}";
                return new UpstreamConnection(await _gate.OpenAsync(sessionId, target, cancellationToken).ConfigureAwait(false));
            },
        };
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    private void Sweep()
    {
        var now = Environment.TickCount64;
        foreach (var (session, entry) in _clients)
        {
            if (now - Volatile.Read(ref entry.LastUsedTicks) > UnusedLifetime.TotalMilliseconds && _clients.TryRemove(session, out var removed))
            {
                removed.Invoker.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        foreach (var entry in _clients.Values)
        {
            entry.Invoker.Dispose();
        }
        _clients.Clear();
    }
}
