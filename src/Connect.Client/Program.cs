using System.Reflection;
using System.Runtime.InteropServices;
using Connect.Client;

if (args.Contains("-h") || args.Contains("--help"))
{
    Console.WriteLine(AgentCommandLine.Usage);
    return 0;
}
if (args.Contains("--version"))
{
    var assembly = typeof(ConnectAgent).Assembly;
    Console.WriteLine($"connect-client {assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? assembly.GetName().Version?.ToString()}");
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
var signals = 0;
void OnSignal(PosixSignalContext context)
{
    // SIGTERM (systemd, docker, kill) and SIGINT (Ctrl+C) both drain: no new streams, open ones finish, links close
    // with 1000. A second signal is left to the runtime's default, which ends the process at once.
    if (Interlocked.Increment(ref signals) == 1)
    {
        context.Cancel = true;
        Console.Error.WriteLine($"connect-client: {context.Signal}: draining (send it again to exit at once)");
        stop.Cancel();
    }
}
// Registered (not Console.CancelKeyPress/ProcessExit): the runtime's SIGTERM handling exits as soon as ProcessExit
// handlers return, before any drain, and a ProcessExit handler that runs after Main cancels a disposed source.
using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

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
