using System.Diagnostics;
using System.Globalization;
using Connect.Bench.Sim;

// connect-sim --servers ws://127.0.0.1:7000/v1/tunnel[,ws://...] --token T --sessions N [--links 1] [--prefix sim]
//             [--jitter-ms 1000] [--start-server K] [--ping-s 15] [--duration-s 60] [--report-s 5]
// --ping-s: each link PINGs the node this often, as connect-client does (15 s, its default); 0 = only answer the node's.
// Prints one line per report interval (links open, dials, failures, reconnects) and exits after the duration: every
// run is bounded. Ctrl+C ends it early.
//
// connect-sim load --proxies 127.0.0.1:7001[,...] --token T --sessions PREFIX:N[,PREFIX:N...] [--rate 100]
//             [--duration-s 60] [--mode both|get|connect] [--timeout-s 30] [--max-in-flight 512] [--report-s 1]
// Sends proxy requests to the simulated agents' sessions at a fixed rate and prints sent/ok/failed every report
// interval, then a "load:" total, one "failure:" line per reason and one "failed-request:" line per failure.
var load = args.Length > 0 && args[0] == "load";
var rest = load ? args[1..] : args;
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < rest.Length; i += 2)
{
    if (!rest[i].StartsWith("--", StringComparison.Ordinal))
    {
        Console.Error.WriteLine($"connect-sim: expected --name value, got '{rest[i]}'");
        return 2;
    }
    options[rest[i][2..]] = rest[i + 1];
}
if (rest.Length % 2 != 0 || !options.ContainsKey(load ? "proxies" : "servers") || !options.ContainsKey("token") || (load && !options.ContainsKey("sessions")))
{
    Console.Error.WriteLine(load
        ? "usage: connect-sim load --proxies host:port[,...] --token T --sessions PREFIX:N[,...] [--rate 100] [--duration-s 60] [--mode both|get|connect] [--timeout-s 30] [--max-in-flight 512] [--report-s 1]"
        : "usage: connect-sim --servers ws://host:port/v1/tunnel[,...] --token T --sessions N [--links 1] [--prefix sim] [--jitter-ms 1000] [--start-server K] [--ping-s 15] [--duration-s 60] [--report-s 5]");
    return 2;
}
int Int(string name, int fallback)
{
    if (!options.TryGetValue(name, out var text))
    {
        return fallback;
    }
    return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
        ? value
        : throw new ArgumentException($"--{name} must be a positive whole number, not '{text}'");
}

try
{
    if (load)
    {
        return await RunLoadAsync();
    }
    var settings = new SimulatorOptions
    {
        Servers = options["servers"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => new Uri(s)).ToList(),
        Token = options["token"],
        Sessions = Int("sessions", 100),
        LinksPerSession = Int("links", 1),
        SessionPrefix = options.GetValueOrDefault("prefix", "sim"),
        DialJitter = TimeSpan.FromMilliseconds(Int("jitter-ms", 1000)),
        KeepAliveInterval = options.TryGetValue("ping-s", out var ping)
            ? int.TryParse(ping, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? TimeSpan.FromSeconds(seconds) : throw new ArgumentException($"--ping-s must be whole seconds (0 = no PINGs from the agents), not '{ping}'")
            : SimulatorOptions.DefaultKeepAliveInterval,
        StartServer = options.TryGetValue("start-server", out var start)
            ? int.TryParse(start, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? index : throw new ArgumentException($"--start-server must be a server index (0, 1, ...), not '{start}'")
            : null,
    };
    var duration = TimeSpan.FromSeconds(Int("duration-s", 60));
    var every = TimeSpan.FromSeconds(Int("report-s", 5));
    using var cancel = new CancellationTokenSource(duration);
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    await using var simulator = new AgentSimulator(settings);
    var clock = Stopwatch.StartNew();
    simulator.Start();
    TimeSpan? allOpen = null;
    var lastReport = TimeSpan.Zero;
    while (!cancel.IsCancellationRequested)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancel.Token);
        }
        catch (OperationCanceledException)
        {
            break;
        }
        if (allOpen is null && simulator.Connected == simulator.TotalLinks)
        {
            allOpen = clock.Elapsed;
            Console.WriteLine($"all {simulator.TotalLinks} links open after {allOpen.Value.TotalSeconds:0.00} s");
        }
        if (clock.Elapsed - lastReport >= every)
        {
            lastReport = clock.Elapsed;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"t={clock.Elapsed.TotalSeconds:0.0}s open={simulator.Connected}/{simulator.TotalLinks} dials={simulator.Dials} failed={simulator.DialFailures} reconnects={simulator.Reconnects} streams={simulator.StreamsServed}"));
        }
    }
    return 0;
}
catch (Exception e) when (e is ArgumentException or UriFormatException)
{
    Console.Error.WriteLine($"connect-sim: {e.Message}");
    return 2;
}

async Task<int> RunLoadAsync()
{
    var sessions = new List<string>();
    foreach (var part in options["sessions"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
    {
        var colon = part.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(part[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0)
        {
            throw new ArgumentException($"--sessions takes PREFIX:COUNT[,PREFIX:COUNT...], not '{part}'");
        }
        sessions.AddRange(Enumerable.Range(0, count).Select(i => AgentSimulator.SessionName(part[..colon], i)));
    }
    var proxies = options["proxies"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    if (proxies.Any(p => p.LastIndexOf(':') is var c && (c <= 0 || !int.TryParse(p[(c + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out _))))
    {
        throw new ArgumentException($"--proxies takes host:port[,host:port...], not '{options["proxies"]}'");
    }
    var runner = new ProxyLoad(new ProxyLoadOptions
    {
        Proxies = proxies,
        Sessions = sessions,
        Token = options["token"],
        Rate = Int("rate", 100),
        Duration = TimeSpan.FromSeconds(Int("duration-s", 60)),
        Mode = options.GetValueOrDefault("mode", "both"),
        RequestTimeout = TimeSpan.FromSeconds(Int("timeout-s", 30)),
        MaxInFlight = Int("max-in-flight", 512),
    });
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    var clock = Stopwatch.StartNew();
    var run = runner.RunAsync(cancel.Token);
    var every = TimeSpan.FromSeconds(Int("report-s", 1));
    while (await Task.WhenAny(run, Task.Delay(every)) != run)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"t={clock.Elapsed.TotalSeconds:0.0}s {runner.Summary()}"));
    }
    await run;
    Console.WriteLine($"load: {runner.Summary()} ({sessions.Count} sessions, {proxies.Count} proxies)");
    foreach (var (reason, count) in runner.Failures)
    {
        Console.WriteLine($"failure: {count} x {reason}");
    }
    // One line per failed request with its start (Unix ms), so a script can count those that started after a kill.
    foreach (var failure in runner.FailedRequests)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"failed-request: started={failure.Started.ToUnixTimeMilliseconds()} {(failure.Connect ? "CONNECT" : "GET")}: {failure.Reason}"));
    }
    return 0;
}
