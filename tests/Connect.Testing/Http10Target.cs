using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Connect.Testing;

/// <summary>
/// A private app like a developer's <c>python3 -m http.server</c>: HTTP/1.0, one response per connection, then close,
/// and a listen backlog of 5. Either the real Python server (when python3 is on the PATH) or a socket server that
/// behaves the same way, so the test runs everywhere.
/// </summary>
public sealed class Http10Target : IAsyncDisposable
{
    public const string Body = "hello from an HTTP/1.0 app\n";

    private readonly Socket? _listener;
    private readonly Process? _python;
    private readonly string? _folder;
    private readonly CancellationTokenSource _stop = new();

    private Http10Target(int port, Socket? listener, Process? python, string? folder)
    {
        Port = port;
        _listener = listener;
        _python = python;
        _folder = folder;
    }

    public int Port { get; }

    public bool IsPython => _python is not null;

    /// <summary>Starts python3's http.server serving <c>/index.html</c>; null when python3 is not installed.</summary>
    public static async Task<Http10Target?> StartPythonAsync()
    {
        var python = FindOnPath("python3");
        if (python is null)
        {
            return null;
        }
        var folder = Directory.CreateTempSubdirectory("connect-http10-").FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "index.html"), Body);
        var port = FreePorts.Next();
        var process = Process.Start(new ProcessStartInfo(python, ["-m", "http.server", port.ToString(), "--bind", "127.0.0.1", "--directory", folder])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var target = new Http10Target(port, null, process, folder);
        await Eventually.UntilAsync(() => CanConnect(port) || process.HasExited, "python3 http.server listening", TimeSpan.FromSeconds(20));
        if (process.HasExited)
        {
            throw new InvalidOperationException($"python3 -m http.server exited with {process.ExitCode}");
        }
        return target;
    }

    /// <summary>Starts the socket-server twin: backlog 5, reads the request head, answers HTTP/1.0 with Content-Length, closes.</summary>
    public static Http10Target StartSocketServer()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(5);
        var target = new Http10Target(((IPEndPoint)listener.LocalEndPoint!).Port, listener, null, null);
        _ = Task.Run(target.AcceptLoopAsync);
        return target;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            // One thread per connection, as http.server's ThreadingHTTPServer does.
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private static async Task ServeAsync(Socket client)
    {
        using (client)
        {
            try
            {
                var head = new StringBuilder();
                var buffer = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var read = await client.ReceiveAsync(buffer, SocketFlags.None);
                    if (read == 0)
                    {
                        return;
                    }
                    head.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }
                var body = Encoding.ASCII.GetBytes(Body);
                var response = Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Type: text/html\r\nContent-Length: {body.Length}\r\n\r\n");
                await client.SendAsync(response.Concat(body).ToArray(), SocketFlags.None);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
            }
        }
    }

    private static bool CanConnect(int port)
    {
        try
        {
            using var probe = new TcpClient();
            probe.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }


    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator)
            .Select(folder => Path.Combine(folder, name)).FirstOrDefault(File.Exists);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener?.Dispose();
        if (_python is not null)
        {
            if (!_python.HasExited)
            {
                _python.Kill();
                await _python.WaitForExitAsync();
            }
            _python.Dispose();
        }
        if (_folder is not null)
        {
            Directory.Delete(_folder, recursive: true);
        }
        _stop.Dispose();
    }
}
