using System.Collections.Concurrent;

namespace Connect.Proxy;

/// <summary>
/// What the proxy front door has in flight, and its part of a node drain: while draining, responses say
/// <c>Connection: close</c> so keep-alive clients move to another node; once the node's listening sockets are closed
/// (links drained, grace over) new connections are refused by the kernel; whatever is still in flight at the deadline
/// is aborted and counted.
/// </summary>
public sealed class ProxyDrain
{
    private readonly ConcurrentDictionary<long, Activity> _inFlight = new();
    private long _next;
    private int _draining;
    private int _closed;

    private sealed record Activity(string Session, string Description, Action Abort);

    /// <summary>Requests and CONNECT tunnels in progress on this node's proxy port.</summary>
    public int InFlight => _inFlight.Count;

    public bool IsDraining => Volatile.Read(ref _draining) == 1;

    /// <summary>True once the drain closed the proxy's listening socket: new proxy connections are refused.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) == 1;

    /// <summary>Raised when the in-flight count drops (so a drain can wait without polling).</summary>
    public event Action? ActivityEnded;

    /// <summary>Registers one request or tunnel; dispose the result when it ends.</summary>
    public IDisposable Track(string session, string description, Action abort)
    {
        var id = Interlocked.Increment(ref _next);
        _inFlight[id] = new Activity(session, description, abort);
        return new Registration(this, id);
    }

    public void StartDraining() => Volatile.Write(ref _draining, 1);

    public void Close() => Volatile.Write(ref _closed, 1);

    /// <summary>Aborts everything still in flight; returns (session, description) of each, for the log and the counter.</summary>
    public IReadOnlyList<(string Session, string Description)> AbortAll()
    {
        var aborted = new List<(string, string)>();
        foreach (var (id, activity) in _inFlight)
        {
            if (_inFlight.TryRemove(id, out _))
            {
                aborted.Add((activity.Session, activity.Description));
                activity.Abort();
            }
        }
        ActivityEnded?.Invoke();
        return aborted;
    }

    private sealed class Registration(ProxyDrain owner, long id) : IDisposable
    {
        public void Dispose()
        {
            if (owner._inFlight.TryRemove(id, out _))
            {
                owner.ActivityEnded?.Invoke();
            }
        }
    }
}
