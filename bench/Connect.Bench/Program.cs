using System.Text.Json;
using Connect.Bench;

// connect-bench: see bench/run.sh for how the suite is run on this machine.
//   connect-bench suite --repo DIR --out DIR --doc FILE [--quick] [--squid-port P --squid-pid N --squid-version V] [--micro DIR] [--profile] [--command TEXT]
//   connect-bench report --results FILE --doc FILE [--micro DIR] [--profile-file FILE]
var options = BenchOptions.Parse(args);
var jsonOptions = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
if (options.Mode == "report")
{
    var loaded = JsonSerializer.Deserialize<SuiteResults>(File.ReadAllText(options.ResultsFile!), jsonOptions)!;
    Report.Write(loaded, options, Path.GetDirectoryName(options.ResultsFile!)!);
    return 0;
}

Directory.CreateDirectory(options.OutDir);
var logDir = Path.Combine(options.OutDir, "logs");
Directory.CreateDirectory(logDir);
var suite = new Suite(options, logDir);
var results = await suite.RunAsync();
var stem = options.Quick ? "quick" : "full";
var resultsFile = Path.Combine(options.OutDir, $"results-{stem}.json");
File.WriteAllText(resultsFile, JsonSerializer.Serialize(results, jsonOptions));
Console.WriteLine($"results: {resultsFile}");
Report.Write(results, options, options.OutDir);
return 0;

/// <summary>The command line of connect-bench.</summary>
public sealed record BenchOptions
{
    public string Mode { get; init; } = "suite";
    public bool Quick { get; init; }
    public string Repo { get; init; } = ".";
    public string OutDir { get; init; } = "bench/results";
    public string Doc { get; init; } = "docs/BENCHMARKS.md";
    public int? SquidPort { get; init; }
    public int? SquidPid { get; init; }
    public string SquidVersion { get; init; } = "?";
    public string? MicroDir { get; init; }
    public bool Profile { get; init; }
    public string? ProfileFile { get; init; }
    public string Command { get; init; } = "bench/run.sh";
    public string? ResultsFile { get; init; }
    public HashSet<string> Only { get; init; } = [];

    public bool Runs(string scenario) => Only.Count == 0 || Only.Contains(scenario);

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions { Mode = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "suite" };
        for (var i = o.Mode == "suite" && (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal)) ? 0 : 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--quick" => o with { Quick = true },
                "--repo" => o with { Repo = Value() },
                "--out" => o with { OutDir = Value() },
                "--doc" => o with { Doc = Value() },
                "--squid-port" => o with { SquidPort = int.Parse(Value()) },
                "--squid-pid" => o with { SquidPid = int.Parse(Value()) },
                "--squid-version" => o with { SquidVersion = Value() },
                "--micro" => o with { MicroDir = Value() },
                "--profile" => o with { Profile = true },
                "--profile-file" => o with { ProfileFile = Value() },
                "--command" => o with { Command = Value() },
                "--results" => o with { ResultsFile = Value() },
                "--only" => o with { Only = Value().Split(',').ToHashSet() },
                _ => throw new ArgumentException($"unknown argument '{args[i]}'"),
            };
        }
        return o;
    }
}
