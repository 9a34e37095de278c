using BenchmarkDotNet.Running;

// Run: dotnet run -c Release --project bench/Connect.Bench.Micro -- --filter '*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(Connect.Bench.Micro.FrameCodecBenchmarks).Assembly).Run(args);
