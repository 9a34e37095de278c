using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Connect.Testing;

/// <summary>
/// The "private apps" on the agent's side, all on loopback: an HTTP app (Kestrel), the same app over HTTPS with a
/// self-signed certificate, a TCP echo server, a TCP server that answers only after the client's FIN, and a TCP
/// source that sends a deterministic byte stream.
/// </summary>
public sealed class TestTargets : IAsyncDisposable
{
    private readonly WebApplication _web;
    private readonly List<TcpListener> _listeners = [];
    private readonly CancellationTokenSource _stop = new();

    private TestTargets(WebApplication web) => _web = web;

    public int HttpPort { get; private set; }

    public int HttpsPort { get; private set; }

    public int EchoPort { get; private set; }

    public int ReplyAfterFinPort { get; private set; }

    public int SourcePort { get; private set; }

    /// <summary>A port nothing listens on (bound once, then released).</summary>
    public int ClosedPort { get; private set; }

    public static async Task<TestTargets> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var certificate = SelfSigned();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate));
            k.Limits.MaxRequestBodySize = null;
        });
        var web = builder.Build();
        web.UseWebSockets();
        web.MapGet("/hello", () => Results.Text("hello from the private app"));
        web.MapGet("/headers", (HttpRequest r) => Results.Json(r.Headers.ToDictionary(h => h.Key, h => h.Value.ToString())));
        web.MapPost("/echo", async (HttpRequest r, HttpResponse response) =>
        {
            response.ContentType = r.ContentType ?? "application/octet-stream";
            await r.Body.CopyToAsync(response.Body);
        });
        web.MapPost("/sha256", async (HttpRequest r) =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while ((read = await r.Body.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                total += read;
            }
            return Results.Text($"{total}:{Convert.ToHexString(sha.GetHashAndReset())}");
        });
        web.MapGet("/bytes/{count:long}", async (long count, HttpResponse response, bool? chunked) =>
        {
            if (chunked != true)
            {
                response.ContentLength = count;
            }
            await DeterministicBytes.WriteAsync(response.Body, count, CancellationToken.None);
        });
        web.MapPrivateWebApp();
        web.Map("/ws", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    return;
                }
                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, CancellationToken.None);
            }
        });
        await web.StartAsync();

        var targets = new TestTargets(web);
        var addresses = web.Urls.ToList();
        targets.HttpPort = new Uri(addresses.First(a => a.StartsWith("http://"))).Port;
        targets.HttpsPort = new Uri(addresses.First(a => a.StartsWith("https://"))).Port;
        targets.EchoPort = targets.Serve(EchoAsync);
        targets.ReplyAfterFinPort = targets.Serve(ReplyAfterFinAsync);
        targets.SourcePort = targets.Serve(SourceAsync);
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        targets.ClosedPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        return targets;
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }

    private int Serve(Func<Socket, Task> handler)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(512);
        _listeners.Add(listener);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (socket)
                    {
                        try
                        {
                            await handler(socket);
                        }
                        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
                        {
                        }
                    }
                });
            }
        });
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Echoes every byte; on the client's FIN, sends its own FIN.</summary>
    private static async Task EchoAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await socket.ReceiveAsync(buffer)) > 0)
        {
            var sent = 0;
            while (sent < read)
            {
                sent += await socket.SendAsync(buffer.AsMemory(sent, read - sent));
            }
        }
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Reads until the client's FIN, then answers "{bytes}:{sha256}" and closes.</summary>
    private static async Task ReplyAfterFinAsync(Socket socket)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int read;
        while ((read = await socket.ReceiveAsync(buffer)) > 0)
        {
            sha.AppendData(buffer, 0, read);
            total += read;
        }
        var reply = System.Text.Encoding.ASCII.GetBytes($"{total}:{Convert.ToHexString(sha.GetHashAndReset())}");
        await socket.SendAsync(reply);
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Reads a decimal byte count and a newline, then sends that many deterministic bytes and closes.</summary>
    private static async Task SourceAsync(Socket socket)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (await socket.ReceiveAsync(one) == 1 && one[0] != (byte)'\n')
        {
            line.Add(one[0]);
        }
        var count = long.Parse(System.Text.Encoding.ASCII.GetString(line.ToArray()));
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await DeterministicBytes.WriteAsync(stream, count, CancellationToken.None);
        socket.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var listener in _listeners)
        {
            listener.Stop();
        }
        await _web.StopAsync();
        await _web.DisposeAsync();
    }
}

/// <summary>A reproducible byte stream (position-dependent), so both ends can check every byte without storing it.</summary>
public static class DeterministicBytes
{
    public static byte At(long position) => (byte)((position * 31 + (position >> 8) * 7 + (position >> 16)) & 0xFF);

    public static void Fill(Span<byte> buffer, long start)
    {
        for (var i = 0; i < buffer.Length; i++)
        {
            buffer[i] = At(start + i);
        }
    }

    public static async Task WriteAsync(Stream stream, long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        long position = 0;
        while (position < count)
        {
            var take = (int)Math.Min(buffer.Length, count - position);
            Fill(buffer.AsSpan(0, take), position);
            await stream.WriteAsync(buffer.AsMemory(0, take), cancellationToken);
            position += take;
        }
    }

    /// <summary>Reads to the end and returns how many bytes matched their position; throws at the first mismatch.</summary>
    public static async Task<long> VerifyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        long position = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != At(position + i))
                {
                    throw new InvalidDataException($"byte {position + i} differs");
                }
            }
            position += read;
        }
        return position;
    }
}
