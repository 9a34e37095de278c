using System.Diagnostics;
using System.Net.Sockets;
using Connect.Testing;
using Connect.Tunnel.Frames;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// The agent as a service: the real connect-client process (built beside these tests) stopped by a signal, as systemd,
/// docker or Ctrl+C stop it. It drains (the open stream finishes), closes its link with 1000 and exits 0.
/// </summary>
public sealed class AgentProcessTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(45);

    private static string AgentDll => Path.Combine(AppContext.BaseDirectory, "connect-client.dll");

    private sealed class AgentProcess : IDisposable
    {
        private readonly List<string> _output = [];

        public AgentProcess(params string[] args)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(AgentDll);
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }
            Process = Process.Start(start)!;
            Process.OutputDataReceived += (_, e) => Add(e.Data);
            Process.ErrorDataReceived += (_, e) => Add(e.Data);
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public Process Process { get; }

        public string Output { get { lock (_output) { return string.Join("\n", _output); } } }

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

        public async Task SignalAsync(string signal)
        {
            using var kill = Process.Start("kill", [$"-{signal}", Process.Id.ToString()])!;
            await kill.WaitForExitAsync().WaitAsync(Bound);
            Assert.Equal(0, kill.ExitCode);
        }

        public async Task<int> ExitCodeAsync()
        {
            await Process.WaitForExitAsync().WaitAsync(Bound);
            return Process.ExitCode;
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
            }
            Process.Dispose();
        }
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public async Task A_signal_drains_the_agent_process_the_open_stream_finishes_the_node_sees_1000_and_it_exits_0(string signal)
    {
        await using var targets = await TestTargets.StartAsync();
        await using var node = await TestNode.StartAsync();
        var session = $"signal-{signal.ToLowerInvariant()}";
        using var agent = new AgentProcess("--server", node.TunnelUri.ToString(), "--session", session, "--token", TestNode.Token, "--status-interval", "0");
        await Eventually.UntilAsync(() => node.Links.All.Count == 1 || agent.Process.HasExited, "the agent process linked", Bound);
        var link = Assert.Single(node.Links.All);

        using var tunnel = await ProxyClient.ConnectAsync(node.ProxyPort, $"127.0.0.1:{targets.ReplyAfterFinPort}", ProxyClient.Basic(session));
        Assert.Equal(200, tunnel.Status);
        await tunnel.Stream.WriteAsync("request body"u8.ToArray());

        await agent.SignalAsync(signal);
        try
        {
            await Eventually.UntilAsync(() => agent.Output.Contains("stopping: no new streams") || agent.Process.HasExited, "the agent draining", Bound);
        }
        catch (TimeoutException e)
        {
            // Failed once in a loaded CI run with nothing else to go on: say what the agent had printed by then.
            throw new TimeoutException($"{e.Message}; the agent's output:\n{agent.Output}", e);
        }
        Assert.False(agent.Process.HasExited, $"the agent exited before the stream finished:\n{agent.Output}");

        // The open stream still completes: FIN goes through, the reply comes back.
        tunnel.Socket.Shutdown(SocketShutdown.Send);
        using var reader = new StreamReader(tunnel.Stream);
        Assert.StartsWith("12:", await reader.ReadToEndAsync().WaitAsync(Bound));

        Assert.Equal(0, await agent.ExitCodeAsync());
        var closed = await link.Mux.Closed.WaitAsync(Bound);
        Assert.Equal(CloseCodes.Normal, closed.Code);
        Assert.True(closed.ByPeer);
        Assert.DoesNotContain("Exception", agent.Output);
    }

    [Fact]
    public async Task An_unknown_switch_is_refused_with_a_clear_error_and_exit_code_2()
    {
        using var agent = new AgentProcess("--server", "ws://127.0.0.1:9", "--session", "demo", "--token", "t", "--sever", "ws://127.0.0.1:9");
        Assert.Equal(2, await agent.ExitCodeAsync());
        Assert.Contains("connect-client: unknown argument '--sever' (see --help)", agent.Output);
    }

    [Fact]
    public async Task Version_prints_the_name_and_version_and_exits_0()
    {
        using var agent = new AgentProcess("--version");
        Assert.Equal(0, await agent.ExitCodeAsync());
        Assert.Matches(@"^connect-client \d+\.\d+\.\d+", agent.Output);
    }
}
