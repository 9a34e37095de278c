using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Connect.Testing;

/// <summary>Proxy clients as the device farm uses them: HttpClient with a WebProxy, and a raw CONNECT over a socket.</summary>
public static class ProxyClient
{
    public static HttpClient Http(int proxyPort, string session, string token = TestNode.Token, bool acceptAnyCertificate = true)
    {
        var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy($"http://127.0.0.1:{proxyPort}") { Credentials = new NetworkCredential(session, token) },
            UseProxy = true,
            AllowAutoRedirect = false,
        };
        if (acceptAnyCertificate)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
    }

    public static string Basic(string session, string token = TestNode.Token) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{session}:{token}"));

    /// <summary>The result of a raw CONNECT: the status line and headers, and the socket (tunnel) on success.</summary>
    public sealed record ConnectResult(int Status, string Head, string Body, Socket Socket, NetworkStream Stream) : IDisposable
    {
        public void Dispose()
        {
            Stream.Dispose();
            Socket.Dispose();
        }
    }

    public static async Task<ConnectResult> ConnectAsync(int proxyPort, string target, string? authorization, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, proxyPort, cancellationToken);
        var stream = new NetworkStream(socket, ownsSocket: false);
        var request = $"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n" + (authorization is null ? "" : $"Proxy-Authorization: {authorization}\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        var (status, head, body) = await ReadResponseHeadAsync(stream, cancellationToken);
        return new ConnectResult(status, head, body, socket, stream);
    }

    /// <summary>Reads a response head byte by byte (so no tunnel byte is consumed), and a Content-Length body if any.</summary>
    public static async Task<(int Status, string Head, string Body)> ReadResponseHeadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new IOException($"connection closed inside the response head: {head}");
            }
            head.Append((char)one[0]);
        }
        var text = head.ToString();
        var status = int.Parse(text.Split(' ')[1]);
        var body = string.Empty;
        var lengthLine = text.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (lengthLine is not null)
        {
            var length = int.Parse(lengthLine["Content-Length:".Length..].Trim());
            var buffer = new byte[length];
            await stream.ReadExactlyAsync(buffer, cancellationToken);
            body = Encoding.UTF8.GetString(buffer);
        }
        return (status, text, body);
    }
}
