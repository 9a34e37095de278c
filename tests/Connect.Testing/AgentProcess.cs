using System.Diagnostics;

namespace Connect.Testing;

/// <summary>
/// The agent as a customer runs it: the built connect-client in its own process, with its own command line and
/// environment (e.g. CONNECT_CLIENT_HOSTS_FILE). Its output is kept for assertions and failure messages.
/// </summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private AgentProcess(Process process)
    {
        _process = process;
    }

    public IReadOnlyList<string> Output { get { lock (_output) { return _output.ToArray(); } } }

    public static async Task<AgentProcess> StartAsync(IEnumerable<string> args, IDictionary<string, string> environment)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "connect-client.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        var agent = new AgentProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start connect-client"));
        agent._process.OutputDataReceived += (_, e) => agent.Add(e.Data);
        agent._process.ErrorDataReceived += (_, e) => agent.Add(e.Data);
        agent._process.BeginOutputReadLine();
        agent._process.BeginErrorReadLine();
        try
        {
            await Eventually.UntilAsync(() => agent._process.HasExited || agent.Output.Any(l => l.Contains("link #1 connected")), "connect-client connected", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            await agent.DisposeAsync();
            throw new TimeoutException($"{e.Message}; output:\n{string.Join("\n", agent.Output)}");
        }
        if (agent._process.HasExited)
        {
            throw new InvalidOperationException($"connect-client exited with {agent._process.ExitCode}:\n{string.Join("\n", agent.Output)}");
        }
        return agent;
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Add(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _process.Dispose();
    }
}
