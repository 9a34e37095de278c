using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Connect.Bench;

/// <summary>
/// A lean HTTP/1.1 and CONNECT client on one socket with its own read buffer, so the load generator costs
/// the same on every path and as little as possible (no HttpClient pools, no header collections).
/// </summary>
public sealed class Conn : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private Conn(Socket socket) => _socket = socket;

    public Socket Socket => _socket;

    public static async Task<Conn> DialAsync(int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new Conn(socket);
    }

    /// <summary>Opens a raw byte stream to the target port on <paramref name="path"/>: a TCP connection, or CONNECT through the proxy.</summary>
    public static async Task<Conn> OpenTunnelAsync(BenchPath path, int targetPort, CancellationToken cancellationToken)
    {
        if (path.ProxyPort is null)
        {
            return await DialAsync(targetPort, cancellationToken);
        }
        var conn = await DialAsync(path.ProxyPort.Value, cancellationToken);
        try
        {
            var authority = $"127.0.0.1:{targetPort}";
            var request = $"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{path.AuthHeaderLine}\r\n";
            await conn.SendAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
            var (status, _) = await conn.ReadHeadAsync(cancellationToken);
            if (status != 200)
            {
                throw new PathFailedException(status, $"CONNECT {authority} via {path.Name} answered {status}");
            }
            return conn;
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        _socket.SendAsync(bytes, SocketFlags.None, cancellationToken);

    /// <summary>Reads into <paramref name="destination"/>, serving buffered bytes first; 0 at EOF.</summary>
    public async ValueTask<int> ReceiveAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_end > _start)
        {
            var take = Math.Min(destination.Length, _end - _start);
            _buffer.AsSpan(_start, take).CopyTo(destination.Span);
            _start += take;
            return take;
        }
        return await _socket.ReceiveAsync(destination, SocketFlags.None, cancellationToken);
    }

    /// <summary>Reads and discards until EOF or <paramref name="limit"/> bytes; returns the count.</summary>
    public async Task<long> DrainAsync(long limit, CancellationToken cancellationToken)
    {
        long total = 0;
        while (total < limit)
        {
            var read = await ReceiveAsync(_buffer.AsMemory(0, (int)Math.Min(_buffer.Length, limit - total)), cancellationToken);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        return total;
    }

    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0 && _start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0 && _end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            throw new IOException("response head larger than the buffer");
        }
        var read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
        _end += read;
        return read > 0;
    }

    /// <summary>Reads a response head; returns the status and the body framing (Content-Length, or -1 for chunked).</summary>
    public async Task<(int Status, long ContentLength)> ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var endOfHead = span.IndexOf("\r\n\r\n"u8);
            if (endOfHead >= 0)
            {
                var head = span[..endOfHead];
                var status = ParseStatus(head);
                var length = ParseFraming(head);
                _start += endOfHead + 4;
                return (status, length);
            }
            if (!await FillAsync(cancellationToken))
            {
                throw new IOException("connection closed before a response head");
            }
        }
    }

    private static int ParseStatus(ReadOnlySpan<byte> head)
    {
        // "HTTP/1.1 200 ..."
        var space = head.IndexOf((byte)' ');
        return space < 0 || head.Length < space + 4 ? 0 : int.Parse(Encoding.ASCII.GetString(head.Slice(space + 1, 3)));
    }

    private static long ParseFraming(ReadOnlySpan<byte> head)
    {
        var text = Encoding.ASCII.GetString(head);
        foreach (var line in text.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                return long.Parse(line.AsSpan("Content-Length:".Length).Trim());
            }
            if (line.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && line.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                return -1;
            }
        }
        return 0;
    }

    /// <summary>Reads (and discards) a response body with the framing from <see cref="ReadHeadAsync"/>; returns body bytes.</summary>
    public async Task<long> ReadBodyAsync(long contentLength, CancellationToken cancellationToken)
    {
        if (contentLength >= 0)
        {
            var got = await DrainAsync(contentLength, cancellationToken);
            if (got != contentLength)
            {
                throw new IOException($"body ended after {got} of {contentLength} bytes");
            }
            return got;
        }
        long total = 0;
        while (true)
        {
            var line = await ReadLineAsync(cancellationToken);
            var semicolon = line.IndexOf(';');
            var size = Convert.ToInt64(semicolon >= 0 ? line[..semicolon] : line, 16);
            if (size == 0)
            {
                // Trailers (none expected) end with an empty line.
                while ((await ReadLineAsync(cancellationToken)).Length > 0)
                {
                }
                return total;
            }
            var got = await DrainAsync(size, cancellationToken);
            if (got != size)
            {
                throw new IOException("chunk ended early");
            }
            total += got;
            await ReadLineAsync(cancellationToken);
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var eol = span.IndexOf("\r\n"u8);
            if (eol >= 0)
            {
                var line = Encoding.ASCII.GetString(span[..eol]);
                _start += eol + 2;
                return line;
            }
            if (!await FillAsync(cancellationToken))
            {
                throw new IOException("connection closed inside a chunked body");
            }
        }
    }

    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    public void Dispose() => _socket.Dispose();
}

/// <summary>A path refused a request (e.g. 502 from Connect across nodes while that forwarding is not built).</summary>
public sealed class PathFailedException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>Pre-encoded HTTP/1.1 GET requests for one path and target.</summary>
public static class Requests
{
    /// <summary>A GET through <paramref name="path"/> in the form that path needs: origin-form direct or inside CONNECT, absolute-form to a proxy.</summary>
    public static byte[] Get(BenchPath path, int targetPort, string pathAndQuery, bool absoluteForm)
    {
        var authority = $"127.0.0.1:{targetPort}";
        var target = absoluteForm ? $"http://{authority}{pathAndQuery}" : pathAndQuery;
        var auth = absoluteForm ? path.AuthHeaderLine : string.Empty;
        return Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n");
    }
}
