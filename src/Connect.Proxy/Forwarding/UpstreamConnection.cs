using Connect.Tunnel.Multiplexing;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// A tunnel stream as one pooled upstream HTTP/1.1 connection of <see cref="UpstreamClients"/>. It adds what the pool
/// cannot know about a connection that runs over a tunnel:
/// <list type="bullet">
/// <item>Retirement. SocketsHttpHandler keeps a connection after an HTTP/1.0 response without
/// <c>Connection: keep-alive</c>, although such a target (Python's http.server, many embedded servers) closes after
/// every response (RFC 9112 section 9.3). Over a direct socket the target's FIN reaches the pool with the response;
/// over a tunnel it follows a frame later, so a request waiting for a connection takes the dead one in between and
/// gets "response ended prematurely". A retired connection refuses its next request before writing a byte, so the
/// request goes to a fresh connection and the target never sees it twice.</item>
/// <item>Bookkeeping for <see cref="UpstreamAttempt"/>: which request it carries, whether it was reused, whether any
/// response byte arrived.</item>
/// </list>
/// </summary>
internal sealed class UpstreamConnection(MuxStream stream) : Stream
{
    private readonly object _sync = new();
    private UpstreamAttempt? _attempt;
    private int _requests;
    private bool _reading = true;
    private bool _retired;

    public MuxStream Inner { get; } = stream;

    /// <summary>Marks the connection as closing after its current response: it never carries another request.</summary>
    public void Retire()
    {
        lock (_sync)
        {
            _retired = true;
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        UpstreamAttempt? attempt;
        lock (_sync)
        {
            if (_reading)
            {
                // The first write after the previous response began: a new request on this connection.
                _reading = false;
                _requests++;
                _attempt = UpstreamAttempt.Current;
                _attempt?.Bind(this, reused: _requests > 1);
                if (_retired)
                {
                    throw new UpstreamRetiredException();
                }
            }
            attempt = _attempt;
        }
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        attempt?.MarkSent();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        UpstreamAttempt? attempt;
        lock (_sync)
        {
            _reading = true;
            attempt = _attempt;
        }
        if (read > 0)
        {
            attempt?.AddResponseBytes(read);
        }
        return read;
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        Inner.Dispose();
        return base.DisposeAsync();
    }
}
