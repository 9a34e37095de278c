using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Connect.Host.Draining;

/// <summary>
/// Kestrel's socket transport, with one addition: a drain can close one listening socket while Kestrel keeps serving
/// the connections it already accepted. Kestrel has no API to unbind a single endpoint of a running server, but it
/// binds through <see cref="IConnectionListenerFactory"/> (the last one registered wins) and treats a listener whose
/// accept returns null as unbound, so closing the socket here ends that endpoint's accept loop cleanly. After that a
/// new connection gets ECONNREFUSED from the kernel before anything is sent, which every client and load balancer
/// can retry elsewhere; an accepted-then-aborted connection (a reset after the request went out) cannot be retried.
/// </summary>
public sealed class ClosableListenerFactory(IOptions<SocketTransportOptions> options, ILoggerFactory loggerFactory) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets = new(options, loggerFactory);
    private readonly ConcurrentDictionary<ClosableListener, byte> _listeners = new();

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = new ClosableListener(await _sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false), this);
        _listeners[listener] = 0;
        return listener;
    }

    /// <summary>Closes the listening socket bound to <paramref name="port"/> (connections already accepted go on); true if one was open.</summary>
    public async Task<bool> CloseAsync(int port)
    {
        var closed = false;
        foreach (var listener in _listeners.Keys)
        {
            if (listener.EndPoint is IPEndPoint ip && ip.Port == port)
            {
                await listener.UnbindAsync().ConfigureAwait(false);
                closed = true;
            }
        }
        return closed;
    }

    private sealed class ClosableListener(IConnectionListener inner, ClosableListenerFactory owner) : IConnectionListener
    {
        private int _unbound;

        public EndPoint EndPoint => inner.EndPoint;

        public ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default) => inner.AcceptAsync(cancellationToken);

        /// <summary>Once: a drain and Kestrel's own shutdown both unbind.</summary>
        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) =>
            Interlocked.Exchange(ref _unbound, 1) == 0 ? inner.UnbindAsync(cancellationToken) : ValueTask.CompletedTask;

        public ValueTask DisposeAsync()
        {
            owner._listeners.TryRemove(this, out _);
            return inner.DisposeAsync();
        }
    }
}
