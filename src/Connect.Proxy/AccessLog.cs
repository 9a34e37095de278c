using System.Diagnostics;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging;

namespace Connect.Proxy;

/// <summary>
/// The proxy's access log, as every proxy keeps one: one structured line (event 2010, category
/// <c>Connect.Proxy.AccessLog</c>) per absolute-form request and per CONNECT tunnel, successful or not, with the
/// session, this (entry) node, the node that held the tunnel link, method, target, status, bytes each way, duration
/// and the error. Each field is a
/// property of the line, so the JSON console formatter writes them as fields. The last entries are kept in a small
/// bounded buffer so "what did this session just do" has an answer without reading logs.
/// Switched with <c>Connect:Proxy:AccessLog</c> (on by default).
/// </summary>
public sealed partial class AccessLog(bool enabled, ILogger<AccessLog> logger)
{
    /// <summary>Entries kept per node (all sessions together); old ones fall out first.</summary>
    public const int Capacity = 1000;

    private readonly LinkedList<AccessEntry> _recent = new();

    public bool Enabled { get; } = enabled;

    /// <summary>This node's cluster address, filled in once it is known (the entry node of every line).</summary>
    public string Node { get; set; } = "-";

    /// <summary>
    /// Names the node whose link carries a stream (session, stream): set by the node, which knows its links and node
    /// channels. Unset (a proxy without a cluster): "-".
    /// </summary>
    public Func<string, MuxStream, string>? LocateLink { get; set; }

    /// <summary>The node that holds the link <paramref name="stream"/> runs on, read when the stream opens (the link may be gone by the end).</summary>
    public string LinkNodeOf(string session, MuxStream stream) => LocateLink?.Invoke(session, stream) ?? "-";

    /// <summary>Starts the record of one request or tunnel; <see cref="Complete"/> writes it.</summary>
    public Pending Begin(string method, string target) => new(method, target, Stopwatch.GetTimestamp());

    public void Complete(Pending request)
    {
        if (!Enabled)
        {
            return;
        }
        var entry = new AccessEntry(DateTimeOffset.UtcNow, request.Session, Node, request.Method, request.Target, request.Status,
            request.BytesUp, request.BytesDown, Math.Round(Stopwatch.GetElapsedTime(request.Started).TotalMilliseconds, 1),
            request.Error == ProxyError.None ? null : request.Error.ToString(), request.Detail, request.LinkNode);
        Log.Access(logger, entry.SessionId, entry.EntryNode, entry.LinkNode, entry.Method, entry.Target, entry.Status, entry.BytesUp, entry.BytesDown,
            entry.DurationMs, entry.Error ?? "-", entry.Detail ?? "");
        lock (_recent)
        {
            _recent.AddLast(entry);
            if (_recent.Count > Capacity)
            {
                _recent.RemoveFirst();
            }
        }
    }

    /// <summary>This node's last entries for <paramref name="session"/>, newest last.</summary>
    public IReadOnlyList<AccessEntry> Recent(string session, int max = 50)
    {
        lock (_recent)
        {
            return _recent.Where(e => e.SessionId == session).TakeLast(max).ToList();
        }
    }

    /// <summary>What is known about one request while it runs; the proxy fills it in as it learns.</summary>
    public sealed class Pending(string method, string target, long started)
    {
        public string Method { get; } = method;

        public string Target { get; } = target;

        public long Started { get; } = started;

        public string Session { get; set; } = "-";

        /// <summary>The node whose link carried the stream (<see cref="LinkNodeOf"/>); "-" until one opened.</summary>
        public string LinkNode { get; set; } = "-";

        /// <summary>The status sent to the client (0: none was sent, the client went away first).</summary>
        public int Status { get; set; }

        public long BytesUp { get; set; }

        public long BytesDown { get; set; }

        public ProxyError Error { get; set; }

        public string? Detail { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2010, Level = LogLevel.Information,
            Message = "access session={SessionId} node={EntryNode} link={LinkNode} {Method} {Target} {Status} up={BytesUp} down={BytesDown} {DurationMs}ms error={ProxyError} {Detail}")]
        public static partial void Access(ILogger logger, string sessionId, string entryNode, string linkNode, string method, string target, int status, long bytesUp, long bytesDown, double durationMs, string proxyError, string detail);
    }
}
