using Connect.Client;

if (args.Contains("-h") || args.Contains("--help"))
{
    Console.WriteLine(AgentCommandLine.Usage);
    return 0;
}

AgentOptions options;
try
{
    options = AgentCommandLine.Parse(args, Environment.GetEnvironmentVariable);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"connect-client: {e.Message}");
    Console.Error.WriteLine("run 'connect-client --help' for usage");
    return 2;
}

using var stop = new CancellationTokenSource();
var presses = 0;
Console.CancelKeyPress += (_, e) =>
{
    // First Ctrl+C drains gracefully; a second one exits at once.
    if (Interlocked.Increment(ref presses) == 1)
    {
        e.Cancel = true;
        stop.Cancel();
    }
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();

var agent = new ConnectAgent(options);
try
{
    await agent.RunAsync(stop.Token);
    return 0;
}
catch (AgentRejectedException e)
{
    Console.Error.WriteLine($"connect-client: {e.Message}");
    return 3;
}
