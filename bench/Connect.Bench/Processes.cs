using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Connect.Bench;

/// <summary>One path as the load generator sees it: where to send, and with which proxy credentials.</summary>
public sealed record BenchPath(string Name, string Label, int? ProxyPort, string AuthHeaderLine)
{
    /// <summary>Null when the path works; otherwise why it is reported as not available.</summary>
    public string? Unavailable { get; set; }

    public static BenchPath Direct => new("direct", "direct (limit)", null, string.Empty);

    public static BenchPath Squid(int port) => new("squid", "squid", port, string.Empty);

    public static BenchPath Connect(string name, string label, int proxyPort, string session, string token) =>
        new(name, label, proxyPort, $"Proxy-Authorization: Basic {Convert.ToBase64String(Encoding.UTF8.GetBytes($"{session}:{token}"))}\r\n");
}

/// <summary>A child process (a Connect node or agent) with its output kept in a log file.</summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private ChildProcess(Process process, StreamWriter log)
    {
        _process = process;
        _log = log;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static ChildProcess Start(string dll, IEnumerable<string> args, string logFile, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_gcServer"] = "0";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var log = new StreamWriter(logFile, append: false) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start dotnet {dll}");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ChildProcess(process, log);
    }

    /// <summary>Resident set size from /proc/PID/status (VmRSS), in bytes.</summary>
    public long ResidentBytes() => ReadRss(_process.Id);

    public static long ReadRss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]) * 1024;
            }
        }
        return 0;
    }

    /// <summary>CPU time (user + system) of the process so far, from /proc/PID/stat, in seconds.</summary>
    public double CpuSeconds() => ReadCpuSeconds(_process.Id);

    public static double ReadCpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // utime and stime are fields 14 and 15 (1-based) of the whole line, i.e. 11 and 12 after the command.
            return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM first (graceful host stop), then kill this one process if it lingers.
            using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString()]))
            {
                await term.WaitForExitAsync();
            }
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }
}

/// <summary>A Connect node started as its own process (connect-node.dll), with loopback ports picked here.</summary>
public sealed class NodeProcess : IAsyncDisposable
{
    public const string DevToken = "dev-token-not-secret";

    private NodeProcess(ChildProcess process, int tunnelPort, int proxyPort, int adminPort, int clusterPort)
    {
        Process = process;
        TunnelPort = tunnelPort;
        ProxyPort = proxyPort;
        AdminPort = adminPort;
        ClusterPort = clusterPort;
    }

    public ChildProcess Process { get; }

    public int TunnelPort { get; }

    public int ProxyPort { get; }

    public int AdminPort { get; }

    public int ClusterPort { get; }

    public string ClusterAddress => $"akka.tcp://connect@127.0.0.1:{ClusterPort}";

    public Uri TunnelUri => new($"ws://127.0.0.1:{TunnelPort}/v1/tunnel");

    public static async Task<NodeProcess> StartAsync(string dll, string name, string logDir, string? seed = null, IEnumerable<string>? extra = null, IDictionary<string, string>? environment = null)
    {
        var ports = FreePorts(5);
        var args = new List<string>
        {
            "--tunnel-port", ports[0].ToString(),
            "--proxy-port", ports[1].ToString(),
            "--admin-port", ports[2].ToString(),
            "--cluster-port", ports[3].ToString(),
            "--data-port", ports[4].ToString(),
            // Same footing as squid with access_log none: no per-request log lines on either side.
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Akka=Warning",
            "--Connect:Sessions:HoldTimeout=00:00:05",
            "--Connect:Tunnel:MaxStreamsPerLink=4096",
            "--Connect:Sessions:MaxStreamsPerSession=8192",
        };
        if (seed is not null)
        {
            args.AddRange(["--seed", seed]);
        }
        else
        {
            // A node with no seed forms its own cluster.
        }
        args.AddRange(extra ?? []);
        var process = ChildProcess.Start(dll, args, Path.Combine(logDir, $"{name}.log"), environment);
        var node = new NodeProcess(process, ports[0], ports[1], ports[2], ports[3]);
        await node.WaitReadyAsync(TimeSpan.FromSeconds(90));
        return node;
    }

    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Process.HasExited)
            {
                throw new InvalidOperationException("node exited during start-up; see its log in the results folder");
            }
            try
            {
                var response = await http.GetAsync($"http://127.0.0.1:{AdminPort}/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"node on admin port {AdminPort} not ready within {timeout}");
    }

    public static int[] FreePorts(int count)
    {
        var sockets = Enumerable.Range(0, count).Select(_ =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return s;
        }).ToList();
        var ports = sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port).ToArray();
        sockets.ForEach(s => s.Dispose());
        return ports;
    }

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}
