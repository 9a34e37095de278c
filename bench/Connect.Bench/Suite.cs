using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Connect.Bench;

/// <summary>Starts the target, the Connect processes and runs every scenario on every path, interleaving the runs.</summary>
public sealed class Suite(BenchOptions options, string logDir)
{
    private readonly BenchConfig _config = new(options.Quick);
    private readonly List<CaseResult> _cases = [];
    private readonly Dictionary<string, double> _scale = [];
    private readonly List<string> _notes = [];
    private readonly Dictionary<string, CpuMeter> _cpu = [];

    private string NodeDll => Path.Combine(options.Repo, "src/Connect.Host/bin/Release/net10.0/connect-node.dll");

    private string AgentDll => Path.Combine(options.Repo, "src/Connect.Client/bin/Release/net10.0/connect-client.dll");

    private static void Log(string line) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");

    public async Task<SuiteResults> RunAsync()
    {
        var started = DateTime.UtcNow;
        var loadAtStart = LoadAverage();
        await using var targets = await Targets.StartAsync();
        Log($"targets: http {targets.HttpPort}, source {targets.SourcePort}, sink {targets.SinkPort}, echo {targets.EchoPort}");

        // Connect, one node: a cluster of one, its agent linked to it.
        // perf needs the JIT to publish symbol maps (/tmp/perf-PID.map) to name managed frames.
        var node1 = await NodeProcess.StartAsync(NodeDll, "node-single", logDir, environment: options.Profile ? new Dictionary<string, string> { ["DOTNET_PerfMapEnabled"] = "1", ["DOTNET_EnableWriteXorExecute"] = "0" } : null);
        var agent1 = StartAgent("agent-single", node1, "bench-single");
        // Connect, across nodes: a cluster of two; proxy on x1, the agent's only link on x2.
        var x1 = await NodeProcess.StartAsync(NodeDll, "node-x1", logDir);
        var x2 = await NodeProcess.StartAsync(NodeDll, "node-x2", logDir, seed: x1.ClusterAddress);
        var agentX = StartAgent("agent-x", x2, "bench-x");
        Log($"nodes: single pid {node1.Process.Pid}, x1 pid {x1.Process.Pid}, x2 pid {x2.Process.Pid}");

        var paths = new List<BenchPath> { BenchPath.Direct };
        _cpu["direct"] = () => 0;
        if (options.SquidPort is int squidPort)
        {
            paths.Add(BenchPath.Squid(squidPort));
            var squidPid = options.SquidPid;
            _cpu["squid"] = () => squidPid is int pid ? SquidCpu(pid) : double.NaN;
        }
        else
        {
            _notes.Add("squid was not started (no --squid-port): its columns are empty.");
        }
        var single = BenchPath.Connect("connect-1", "Connect 1 node", node1.ProxyPort, "bench-single", NodeProcess.DevToken);
        var across = BenchPath.Connect("connect-x", "Connect across nodes", x1.ProxyPort, "bench-x", NodeProcess.DevToken);
        paths.Add(single);
        paths.Add(across);
        _cpu["connect-1"] = () => node1.Process.CpuSeconds() + agent1.CpuSeconds();
        _cpu["connect-x"] = () => x1.Process.CpuSeconds() + x2.Process.CpuSeconds() + agentX.CpuSeconds();

        await using (agent1)
        await using (agentX)
        await using (node1)
        await using (x1)
        await using (x2)
        {
            foreach (var path in paths.Where(p => p.ProxyPort is not null))
            {
                await ProbeAsync(path, targets);
            }
            var scenarios = new Scenarios(_config, targets, Log);
            await RunScenariosAsync(scenarios, paths);
            if (options.Runs("stream-memory"))
            {
                await StreamMemoryAsync(node1, agent1, single, targets);
            }
            if (options.Profile)
            {
                await ProfileAsync(node1, agent1, single, scenarios);
            }
        }

        if (options.Runs("scale"))
        {
            await ScaleAsync();
        }

        if (options.Runs("drain"))
        {
            await DrainMoveAsync();
        }

        return new SuiteResults(
            started.ToString("u"),
            options.Quick,
            options.Command,
            Machine(loadAtStart),
            Settings(),
            paths.ToDictionary(p => p.Name, p => p.Label),
            _cases,
            _scale,
            _notes);
    }

    private ChildProcess StartAgent(string name, NodeProcess node, string session) =>
        ChildProcess.Start(AgentDll, ["--server", node.TunnelUri.ToString(), "--session", session, "--token", NodeProcess.DevToken, "--status-interval", "0"], Path.Combine(logDir, $"{name}.log"));

    private static double SquidCpu(int pid)
    {
        // squid -N runs one process; count its children too in case a build forks helpers.
        var total = ChildProcess.ReadCpuSeconds(pid);
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[1] == pid.ToString())
                {
                    total += ChildProcess.ReadCpuSeconds(int.Parse(Path.GetFileName(dir)));
                }
            }
            catch (IOException)
            {
            }
        }
        return total;
    }

    /// <summary>One CONNECT + echo byte; a 502 from Connect across nodes marks that path as not available in this build.</summary>
    private async Task ProbeAsync(BenchPath path, Targets targets)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var conn = await Conn.OpenTunnelAsync(path, targets.EchoPort, limit.Token);
                await conn.SendAsync(new byte[] { 1 }, limit.Token);
                var back = new byte[1];
                await conn.ReceiveAsync(back, limit.Token);
                Log($"probe {path.Name}: ok");
                return;
            }
            catch (PathFailedException e) when (attempt < 3 && !limit.IsCancellationRequested)
            {
                Log($"probe {path.Name}: {e.Message}; retrying");
                await Task.Delay(2000);
            }
            catch (PathFailedException e) when (e.Status == 502 && path.Name == "connect-x")
            {
                path.Unavailable = "not available in this build: the proxy on node 1 answered 502 for a session whose link is on node 2 (cross-node forwarding is not merged yet)";
                Log($"probe {path.Name}: {path.Unavailable}");
                return;
            }
            catch (Exception e) when (e is PathFailedException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                path.Unavailable = $"failed its probe: {e.Message}";
                Log($"probe {path.Name}: {path.Unavailable}");
                return;
            }
        }
    }

    private async Task RunScenariosAsync(Scenarios s, List<BenchPath> paths)
    {
        var gib = _config.BulkBytes >= 1L << 30 ? $"{_config.BulkBytes >> 30} GiB" : $"{_config.BulkBytes >> 20} MiB";
        foreach (var streams in new[] { 1, 8 })
        {
            var label = streams == 1 ? "1 stream" : $"{streams} streams";
            if (options.Runs("bulk-download"))
            {
                await ThroughputAsync("bulk-connect-download", $"{gib}, {label}", paths, _config.BulkRuns, p => s.BulkDownloadAsync(p, streams));
            }
            if (options.Runs("bulk-upload"))
            {
                await ThroughputAsync("bulk-connect-upload", $"{gib}, {label}", paths, _config.BulkRuns, p => s.BulkUploadAsync(p, streams));
            }
        }
        if (options.Runs("bulk-absolute"))
        {
            await ThroughputAsync("bulk-absolute-download", $"{gib} GET", paths, _config.BulkRuns, s.AbsoluteDownloadAsync);
        }
        foreach (var viaConnect in new[] { false, true })
        {
            var scenario = viaConnect ? "small-connect" : "small-absolute";
            if (!options.Runs(scenario))
            {
                continue;
            }
            foreach (var clients in _config.Concurrency)
            {
                await LatencyAsync(scenario, $"{clients} client{(clients == 1 ? "" : "s")}", paths, _config.SmallRuns,
                    p => s.SmallRequestsAsync(p, clients, viaConnect, _config.SmallDuration, _config.SmallMaxRequests));
            }
        }
        if (options.Runs("open-rate"))
        {
            await LatencyAsync("open-rate", $"{_config.OpenWorkers} workers", paths, _config.SmallRuns, s.OpenRateAsync, primary: "streams/s");
        }
        if (options.Runs("fairness"))
        {
            await FairnessAsync(s, paths);
        }
    }

    private async Task ThroughputAsync(string scenario, string caseName, List<BenchPath> paths, int runs, Func<BenchPath, Task<(double MiBps, bool Bounded)>> run)
    {
        var values = paths.ToDictionary(p => p.Name, _ => new List<double>());
        var cpu = paths.ToDictionary(p => p.Name, _ => new List<double>());
        var bounded = new HashSet<string>();
        var failed = new Dictionary<string, string>();
        for (var r = 0; r < runs; r++)
        {
            foreach (var path in paths.Where(p => p.Unavailable is null && !failed.ContainsKey(p.Name)))
            {
                var cpuBefore = _cpu[path.Name]();
                try
                {
                    var (mibps, wasBounded) = await run(path);
                    var cpuUsed = _cpu[path.Name]() - cpuBefore;
                    values[path.Name].Add(mibps);
                    // CPU seconds the proxy side (node(s) + agent, or squid) spent per GiB moved.
                    cpu[path.Name].Add(mibps > 0 ? cpuUsed / (_config.BulkBytes / (double)(1 << 30)) : double.NaN);
                    if (wasBounded)
                    {
                        bounded.Add(path.Name);
                    }
                    Log($"{scenario} [{caseName}] {path.Name} run {r + 1}: {mibps:F0} MiB/s{(wasBounded ? " (time-bounded)" : "")}, proxy CPU {cpuUsed:F1} s");
                }
                catch (Exception e) when (e is PathFailedException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
                {
                    failed[path.Name] = e.Message;
                    Log($"{scenario} [{caseName}] {path.Name}: FAILED {e.Message}");
                }
            }
        }
        foreach (var path in paths)
        {
            var metrics = new Dictionary<string, double>();
            if (values[path.Name].Count > 0)
            {
                metrics["MiB/s"] = Stats.Median(values[path.Name]);
                if (path.Name != "direct")
                {
                    metrics["proxy CPU s/GiB"] = Stats.Median(cpu[path.Name]);
                }
            }
            _cases.Add(new CaseResult(scenario, caseName, path.Name, "MiB/s", true, metrics, values[path.Name],
                path.Unavailable ?? (failed.TryGetValue(path.Name, out var f) ? $"failed: {f}" : null),
                bounded.Contains(path.Name) ? "time-bounded: rate over the bytes moved before the limit" : null));
        }
    }

    private async Task LatencyAsync(string scenario, string caseName, List<BenchPath> paths, int runs, Func<BenchPath, Task<Scenarios.LatencyResult>> run, string primary = "req/s")
    {
        var results = paths.ToDictionary(p => p.Name, _ => new List<Scenarios.LatencyResult>());
        var failed = new Dictionary<string, string>();
        for (var r = 0; r < runs; r++)
        {
            foreach (var path in paths.Where(p => p.Unavailable is null && !failed.ContainsKey(p.Name)))
            {
                try
                {
                    var result = await run(path);
                    results[path.Name].Add(result);
                    Log($"{scenario} [{caseName}] {path.Name} run {r + 1}: {result.RequestsPerSecond:F0} {primary}, p50 {result.P50Ms:F3} ms, p99 {result.P99Ms:F3} ms, {result.Requests} done, {result.Errors} errors");
                }
                catch (Exception e) when (e is PathFailedException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
                {
                    failed[path.Name] = e.Message;
                    Log($"{scenario} [{caseName}] {path.Name}: FAILED {e.Message}");
                }
            }
        }
        foreach (var path in paths)
        {
            var list = results[path.Name];
            var metrics = new Dictionary<string, double>();
            if (list.Count > 0)
            {
                metrics[primary] = Stats.Median(list.Select(x => x.RequestsPerSecond));
                metrics["p50 ms"] = Stats.Median(list.Select(x => x.P50Ms));
                metrics["p99 ms"] = Stats.Median(list.Select(x => x.P99Ms));
                metrics["errors"] = list.Sum(x => x.Errors);
            }
            _cases.Add(new CaseResult(scenario, caseName, path.Name, primary, true, metrics, list.Select(x => x.RequestsPerSecond).ToList(),
                path.Unavailable ?? (failed.TryGetValue(path.Name, out var f) ? $"failed: {f}" : null)));
        }
    }

    private async Task FairnessAsync(Scenarios s, List<BenchPath> paths)
    {
        var runs = paths.ToDictionary(p => p.Name, _ => new List<(Scenarios.LatencyResult Loaded, double Bulk)>());
        var failed = new Dictionary<string, string>();
        for (var r = 0; r < _config.SmallRuns; r++)
        {
            foreach (var path in paths.Where(p => p.Unavailable is null && !failed.ContainsKey(p.Name)))
            {
                try
                {
                    var result = await s.FairnessAsync(path);
                    runs[path.Name].Add(result);
                    Log($"fairness {path.Name} run {r + 1}: p50 {result.Loaded.P50Ms:F3} ms, p99 {result.Loaded.P99Ms:F3} ms while bulk ran at {result.BulkMiBps:F0} MiB/s");
                }
                catch (Exception e) when (e is PathFailedException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
                {
                    failed[path.Name] = e.Message;
                    Log($"fairness {path.Name}: FAILED {e.Message}");
                }
            }
        }
        foreach (var path in paths)
        {
            var list = runs[path.Name];
            var metrics = new Dictionary<string, double>();
            if (list.Count > 0)
            {
                metrics["p99 ms"] = Stats.Median(list.Select(x => x.Loaded.P99Ms));
                metrics["p50 ms"] = Stats.Median(list.Select(x => x.Loaded.P50Ms));
                metrics["req/s"] = Stats.Median(list.Select(x => x.Loaded.RequestsPerSecond));
                metrics["bulk MiB/s"] = Stats.Median(list.Select(x => x.Bulk));
            }
            _cases.Add(new CaseResult("fairness", "1 client + 1 bulk download", path.Name, "p99 ms", false, metrics, list.Select(x => x.Loaded.P99Ms).ToList(),
                path.Unavailable ?? (failed.TryGetValue(path.Name, out var f) ? $"failed: {f}" : null)));
        }
    }

    /// <summary>RSS of the single node (and its agent) before and after opening many CONNECT streams that stay open.</summary>
    private async Task StreamMemoryAsync(NodeProcess node, ChildProcess agent, BenchPath path, Targets targets)
    {
        var count = _config.StreamsForMemory;
        await Task.Delay(2000);
        var nodeBefore = node.Process.ResidentBytes();
        var agentBefore = agent.ResidentBytes();
        var conns = new List<Conn>();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            var gate = new SemaphoreSlim(32);
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
            {
                await gate.WaitAsync(limit.Token);
                try
                {
                    var conn = await Conn.OpenTunnelAsync(path, targets.EchoPort, limit.Token);
                    await conn.SendAsync(new byte[] { 7 }, limit.Token);
                    await conn.ReceiveAsync(new byte[1], limit.Token);
                    lock (conns)
                    {
                        conns.Add(conn);
                    }
                }
                finally
                {
                    gate.Release();
                }
            }));
            var opened = watch.Elapsed;
            await Task.Delay(3000);
            var nodeAfter = node.Process.ResidentBytes();
            var agentAfter = agent.ResidentBytes();
            _scale["open streams"] = count;
            _scale["node RSS per open stream KiB"] = (nodeAfter - nodeBefore) / 1024.0 / count;
            _scale["agent RSS per open stream KiB"] = (agentAfter - agentBefore) / 1024.0 / count;
            _scale["time to open streams s"] = opened.TotalSeconds;
            Log($"stream memory: {count} open streams: node +{(nodeAfter - nodeBefore) / 1024.0 / count:F1} KiB/stream, agent +{(agentAfter - agentBefore) / 1024.0 / count:F1} KiB/stream");
        }
        catch (Exception e) when (e is PathFailedException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            _notes.Add($"stream memory failed: {e.Message}");
            Log($"stream memory: FAILED {e.Message}");
        }
        finally
        {
            foreach (var conn in conns)
            {
                conn.Dispose();
            }
        }
    }

    /// <summary>perf record of the single node during a bulk CONNECT download (JIT symbols via DOTNET_PerfMapEnabled on the node).</summary>
    private async Task ProfileAsync(NodeProcess node, ChildProcess agent, BenchPath path, Scenarios s)
    {
        var data = Path.Combine(logDir, "perf-node.data");
        var report = Path.Combine(options.OutDir, "profile-node.txt");
        try
        {
            using var perf = Process.Start(new ProcessStartInfo("perf", ["record", "-F", "499", "-g", "-p", node.Process.Pid.ToString(), "-o", data, "--", "sleep", "8"])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            var load = Task.Run(async () =>
            {
                var until = DateTime.UtcNow.AddSeconds(8);
                while (DateTime.UtcNow < until)
                {
                    await s.BulkDownloadAsync(path, 1);
                }
            });
            await perf.WaitForExitAsync();
            await load;
            using var rep = Process.Start(new ProcessStartInfo("perf", ["report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol", "--percent-limit", "0.7"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var text = await rep.StandardOutput.ReadToEndAsync();
            await rep.WaitForExitAsync();
            // Keep the flat part (no call graphs): lines with a percentage at the start.
            var flat = text.Split('\n').Where(l => l.TrimStart().Length > 0 && char.IsDigit(l.TrimStart()[0]) && l.Contains('%')).Take(60);
            File.WriteAllLines(report, flat);
            Log($"profile: {report}");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            _notes.Add($"profile skipped: {e.Message}");
        }
    }

    /// <summary>
    /// Time to move idle links off a draining node: two node processes, N idle links (one session each) on node A
    /// that follow GOAWAY to node B, then a drain of A through the admin API; the clock stops when A reports ready
    /// to terminate (no link, stream or proxy request) and all N sessions have their new link on B.
    /// </summary>
    private async Task DrainMoveAsync()
    {
        var count = _config.Quick ? 200 : 1000;
        await using var a = await NodeProcess.StartAsync(NodeDll, "drain-a", logDir);
        await using var b = await NodeProcess.StartAsync(NodeDll, "drain-b", logDir, seed: a.ClusterAddress);
        await using var links = new IdleLinks { FollowGoAwayTo = b.TunnelUri };
        var connect = await links.GrowToAsync(a.TunnelUri, count, NodeProcess.DevToken, 64, TimeSpan.FromSeconds(300));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", NodeProcess.DevToken);
        var watch = Stopwatch.StartNew();
        (await http.PostAsync($"http://127.0.0.1:{b.AdminPort}/v1/nodes/drain?address={Uri.EscapeDataString(a.ClusterAddress)}", null)).EnsureSuccessStatusCode();
        var empty = TimeSpan.Zero;
        while (watch.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (empty == TimeSpan.Zero && await ReadyToTerminateAsync(http, b.AdminPort, a.ClusterAddress))
            {
                empty = watch.Elapsed;
            }
            if (empty != TimeSpan.Zero && links.Moved >= count)
            {
                break;
            }
            await Task.Delay(20);
        }
        var moved = watch.Elapsed;
        _scale[$"drain: idle links on the draining node"] = count;
        _scale[$"drain: connect {count} links s"] = connect.TotalSeconds;
        _scale[$"drain: node empty (ready to terminate) after s"] = empty.TotalSeconds;
        _scale[$"drain: all {count} sessions re-linked on the other node after s"] = moved.TotalSeconds;
        _scale[$"drain: links moved"] = links.Moved;
        Log($"drain: {count} idle links; node empty after {empty.TotalSeconds:F2} s, {links.Moved} sessions re-linked after {moved.TotalSeconds:F2} s");
    }

    private static async Task<bool> ReadyToTerminateAsync(HttpClient http, int adminPort, string address)
    {
        using var document = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{adminPort}/v1/nodes"));
        return document.RootElement.GetProperty("nodes").EnumerateArray().Any(n =>
            n.GetProperty("address").GetString() == address && n.GetProperty("readyToTerminate").GetBoolean());
    }

    /// <summary>A fresh node (its own process and cluster) with only idle links: RSS at each size and the time to connect them.</summary>
    private async Task ScaleAsync()
    {
        await using var node = await NodeProcess.StartAsync(NodeDll, "node-scale", logDir);
        await using var links = new IdleLinks();
        // Warm the node's code paths (JIT, first sharding allocation) with a few links, then take the baseline.
        await links.GrowToAsync(node.TunnelUri, 20, NodeProcess.DevToken, 20, TimeSpan.FromSeconds(60));
        await Task.Delay(3000);
        var baseline = node.Process.ResidentBytes();
        var baseCount = links.Count;
        _scale["baseline links"] = baseCount;
        _scale["baseline RSS MiB"] = baseline / 1048576.0;
        long previous = baseline;
        var previousCount = baseCount;
        foreach (var target in _config.ScaleLinks)
        {
            var took = await links.GrowToAsync(node.TunnelUri, target, NodeProcess.DevToken, 64, TimeSpan.FromSeconds(300));
            await Task.Delay(5000);
            var rss = node.Process.ResidentBytes();
            _scale[$"links {target}: RSS MiB"] = rss / 1048576.0;
            _scale[$"links {target}: connect s"] = took.TotalSeconds;
            _scale[$"links {target}: links/s"] = (target - previousCount) / took.TotalSeconds;
            _scale[$"links {target}: KiB per link over baseline"] = (rss - baseline) / 1024.0 / (target - baseCount);
            _scale[$"links {target}: KiB per link, slope from previous"] = (rss - previous) / 1024.0 / (target - previousCount);
            Log($"scale: {target} idle links in {took.TotalSeconds:F1} s, RSS {rss / 1048576.0:F0} MiB, {(rss - baseline) / 1024.0 / (target - baseCount):F1} KiB/link over baseline, {(rss - previous) / 1024.0 / (target - previousCount):F1} KiB/link slope");
            previous = rss;
            previousCount = target;
        }
    }

    private Dictionary<string, string> Machine(string loadAtStart)
    {
        string Read(string file, string prefix)
        {
            try
            {
                var line = File.ReadLines(file).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
                return line is null ? "?" : line[(line.IndexOf(line.Contains(':') ? ':' : '=') + 1)..].Trim().Trim('"');
            }
            catch (IOException)
            {
                return "?";
            }
        }
        return new Dictionary<string, string>
        {
            ["nproc"] = Environment.ProcessorCount.ToString(),
            ["cpu"] = Read("/proc/cpuinfo", "model name"),
            ["memory"] = Read("/proc/meminfo", "MemTotal"),
            ["os"] = Read("/etc/os-release", "PRETTY_NAME"),
            ["kernel"] = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?",
            [".NET"] = RuntimeInformation.FrameworkDescription,
            ["squid"] = options.SquidVersion,
            ["load average at start"] = loadAtStart,
            // Read when the suite ends (this is built then): other work on the machine during the run shows here.
            ["load average at end"] = LoadAverage(),
        };
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";

    private Dictionary<string, string> Settings() => new()
    {
        ["bulk bytes"] = _config.BulkBytes.ToString(),
        ["bulk runs (median)"] = _config.BulkRuns.ToString(),
        ["bulk time limit s"] = _config.BulkTimeLimit.TotalSeconds.ToString(),
        ["small-request runs (median)"] = _config.SmallRuns.ToString(),
        ["small-request duration s"] = _config.SmallDuration.TotalSeconds.ToString(),
        ["small-request max requests"] = _config.SmallMaxRequests.ToString(),
        ["open-rate workers"] = _config.OpenWorkers.ToString(),
        ["open-rate duration s"] = _config.OpenDuration.TotalSeconds.ToString(),
        ["fairness duration s"] = _config.FairnessDuration.TotalSeconds.ToString(),
        ["scale links"] = string.Join(", ", _config.ScaleLinks),
        ["streams for memory"] = _config.StreamsForMemory.ToString(),
    };
}
