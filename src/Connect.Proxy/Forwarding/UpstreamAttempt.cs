namespace Connect.Proxy.Forwarding;

/// <summary>
/// One try of one absolute-form request upstream, as seen from the connection that carried it. The middleware sets
/// it (through an async-local) before sending; the pooled connection that writes the request records itself here, so
/// the middleware learns afterwards which connection served the try, whether it was reused, and whether any byte of
/// the request or the response crossed it. That is what decides whether a failed try may be sent again.
/// </summary>
internal sealed class UpstreamAttempt
{
    private static readonly AsyncLocal<UpstreamAttempt?> CurrentAttempt = new();

    private long _responseBytes;
    private int _sent;

    /// <summary>The try in progress on this async flow (set around HttpMessageInvoker.SendAsync and the body copy).</summary>
    public static UpstreamAttempt? Current
    {
        get => CurrentAttempt.Value;
        set => CurrentAttempt.Value = value;
    }

    /// <summary>The connection that took the request, once it wrote (or refused to write) its first byte.</summary>
    public UpstreamConnection? Connection { get; private set; }

    /// <summary>True when that connection had carried an earlier request (a pooled, reused connection).</summary>
    public bool Reused { get; private set; }

    /// <summary>True once any byte of this request went into the tunnel.</summary>
    public bool Sent => Volatile.Read(ref _sent) == 1;

    public long ResponseBytes => Interlocked.Read(ref _responseBytes);

    internal void Bind(UpstreamConnection connection, bool reused)
    {
        Connection = connection;
        Reused = reused;
    }

    internal void MarkSent() => Volatile.Write(ref _sent, 1);

    internal void AddResponseBytes(int count) => Interlocked.Add(ref _responseBytes, count);
}
