using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Connect.Testing;

/// <summary>
/// A plain TCP listener on loopback that records every connection and every byte it receives. Optionally answers
/// each request head with a fixed response (e.g. a 401 to a WebSocket upgrade), as a refusing server or load balancer would.
/// </summary>
public sealed class RecordingListener : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly MemoryStream _received = new();
    private readonly string? _response;
    private readonly Task _accept;
    private int _connections;

    private RecordingListener(string? response)
    {
        _response = response;
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Everything received on every connection, as Latin-1 text.</summary>
    public string Received { get { lock (_received) { return Encoding.Latin1.GetString(_received.ToArray()); } } }

    /// <summary>Records and answers nothing.</summary>
    public static RecordingListener Silent() => new(null);

    /// <summary>Answers every request head with <paramref name="status"/> and closes, as a refusing server does.</summary>
    public static RecordingListener Answering(int status, string reason) =>
        new($"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                _ = ServeAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var buffer = new byte[4096];
            var head = new StringBuilder();
            try
            {
                int read;
                while ((read = await stream.ReadAsync(buffer, _stop.Token)) > 0)
                {
                    lock (_received)
                    {
                        _received.Write(buffer, 0, read);
                    }
                    head.Append(Encoding.Latin1.GetString(buffer, 0, read));
                    if (_response is not null && head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(_response), _stop.Token);
                        return;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        _stop.Dispose();
    }
}
