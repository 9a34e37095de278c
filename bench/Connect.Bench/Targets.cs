using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Connect.Bench;

/// <summary>
/// The "private app" every path reaches, all on 127.0.0.1 in this process: an HTTP server (Kestrel) with
/// <c>/small</c> (1 KiB) and <c>/bytes?n=N</c> (N bytes, Content-Length), and raw TCP servers: a source
/// (reads an 8-byte big-endian count, sends that many bytes, then FIN), a sink (reads an 8-byte count and that many bytes, answers
/// the count it read) and an echo.
/// </summary>
public sealed class Targets : IAsyncDisposable
{
    public const int SmallSize = 1024;

    private static readonly byte[] Pattern = CreatePattern();
    private readonly WebApplication _web;
    private readonly List<Socket> _listeners = [];
    private readonly CancellationTokenSource _stop = new();

    private Targets(WebApplication web) => _web = web;

    public int HttpPort { get; private set; }

    public int SourcePort { get; private set; }

    public int SinkPort { get; private set; }

    public int EchoPort { get; private set; }

    private static byte[] CreatePattern()
    {
        var bytes = new byte[64 * 1024];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)('a' + i % 26);
        }
        return bytes;
    }

    public static async Task<Targets> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MaxConcurrentConnections = null;
            k.AddServerHeader = false;
        });
        var web = builder.Build();
        var small = Pattern.AsMemory(0, SmallSize);
        web.MapGet("/small", async (HttpResponse response) =>
        {
            response.ContentType = "application/octet-stream";
            response.ContentLength = SmallSize;
            await response.Body.WriteAsync(small);
        });
        web.MapGet("/bytes", async (HttpResponse response, long n) =>
        {
            response.ContentType = "application/octet-stream";
            response.ContentLength = n;
            var left = n;
            while (left > 0)
            {
                var take = (int)Math.Min(left, Pattern.Length);
                await response.Body.WriteAsync(Pattern.AsMemory(0, take));
                left -= take;
            }
        });
        await web.StartAsync();
        var targets = new Targets(web)
        {
            HttpPort = new Uri(web.Urls.First()).Port,
        };
        targets.SourcePort = targets.Listen(targets.ServeSourceAsync);
        targets.SinkPort = targets.Listen(targets.ServeSinkAsync);
        targets.EchoPort = targets.Listen(targets.ServeEchoAsync);
        return targets;
    }

    private int Listen(Func<Socket, Task> serve)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4096);
        _listeners.Add(listener);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                client.NoDelay = true;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await serve(client);
                    }
                    catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
                    {
                        // The client went away mid-transfer (a time-bounded run ended): nothing to report.
                    }
                    finally
                    {
                        client.Dispose();
                    }
                });
            }
        });
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    private async Task ServeSourceAsync(Socket client)
    {
        var header = new byte[8];
        await ReadExactlyAsync(client, header);
        var left = BinaryPrimitives.ReadInt64BigEndian(header);
        while (left > 0)
        {
            var take = (int)Math.Min(left, Pattern.Length);
            await client.SendAsync(Pattern.AsMemory(0, take), SocketFlags.None, _stop.Token);
            left -= take;
        }
        client.Shutdown(SocketShutdown.Send);
        // Wait for the client's FIN so the close is orderly on every path.
        var drain = new byte[256];
        while (await client.ReceiveAsync(drain, SocketFlags.None, _stop.Token) > 0)
        {
        }
    }

    private async Task ServeSinkAsync(Socket client)
    {
        // Reads an 8-byte count, then that many bytes, then answers the count it read. The count up front means
        // no half-close is needed: squid closes both directions of a CONNECT tunnel on the client's FIN.
        var header = new byte[8];
        await ReadExactlyAsync(client, header);
        var expected = BinaryPrimitives.ReadInt64BigEndian(header);
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (total < expected)
        {
            var read = await client.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, expected - total)), SocketFlags.None, _stop.Token);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        var answer = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(answer, total);
        await client.SendAsync(answer, SocketFlags.None, _stop.Token);
        client.Shutdown(SocketShutdown.Send);
    }

    private async Task ServeEchoAsync(Socket client)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
        {
            await client.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
        }
        client.Shutdown(SocketShutdown.Send);
    }

    private async Task ReadExactlyAsync(Socket socket, Memory<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
            if (read == 0)
            {
                throw new IOException("closed early");
            }
            buffer = buffer[read..];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }
        await _web.StopAsync();
        await _web.DisposeAsync();
    }
}
