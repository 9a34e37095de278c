using System.Diagnostics;
using System.Globalization;
using Connect.Bench.Sim;

// connect-sim --servers ws://127.0.0.1:7000/v1/tunnel[,ws://...] --token T --sessions N [--links 1] [--prefix sim]
//             [--jitter-ms 1000] [--duration-s 60] [--report-s 5]
// Prints one line per report interval (links open, dials, failures, reconnects) and exits after the duration: every
// run is bounded. Ctrl+C ends it early.
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal))
    {
        Console.Error.WriteLine($"connect-sim: expected --name value, got '{args[i]}'");
        return 2;
    }
    options[args[i][2..]] = args[i + 1];
}
if (args.Length % 2 != 0 || !options.ContainsKey("servers") || !options.ContainsKey("token"))
{
    Console.Error.WriteLine("usage: connect-sim --servers ws://host:port/v1/tunnel[,...] --token T --sessions N [--links 1] [--prefix sim] [--jitter-ms 1000] [--duration-s 60] [--report-s 5]");
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
    var settings = new SimulatorOptions
    {
        Servers = options["servers"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => new Uri(s)).ToList(),
        Token = options["token"],
        Sessions = Int("sessions", 100),
        LinksPerSession = Int("links", 1),
        SessionPrefix = options.GetValueOrDefault("prefix", "sim"),
        DialJitter = TimeSpan.FromMilliseconds(Int("jitter-ms", 1000)),
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
