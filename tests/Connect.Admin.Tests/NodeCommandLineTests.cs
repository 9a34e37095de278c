using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Connect.Admin.Tests;

/// <summary>
/// The real connect-node (and connectctl) processes, started as an operator would: help and version print and exit,
/// unknown switches are refused, and a taken port is one line that names the setting.
/// </summary>
public sealed class NodeCommandLineTests
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Help_prints_the_switches_and_exits_0_without_starting_a_node()
    {
        var run = await RunAsync("connect-node.dll", "--help", "--admin-port", "0", "--proxy-port", "0", "--tunnel-port", "0", "--cluster-port", "0", "--data-port", "0");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--proxy-port", run.Output);
        Assert.Contains("Connect:Proxy:Port", run.Output);
        Assert.Contains("--seed", run.Output);
        Assert.DoesNotContain("is running", run.Output);
    }

    [Theory]
    [InlineData("connect-node.dll")]
    [InlineData("connectctl.dll")]
    public async Task Version_prints_the_version_and_exits_0(string program)
    {
        var run = await RunAsync(program, "--version");
        Assert.Equal(0, run.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", run.Output.Trim());
    }

    [Theory]
    [InlineData("--proxy-prot", "8080")]
    [InlineData("start")]
    [InlineData("--verbose")]
    public async Task An_unknown_switch_or_word_is_refused_with_exit_2(params string[] args)
    {
        var run = await RunAsync("connect-node.dll", [.. args, "--admin-port", "0", "--proxy-port", "0", "--tunnel-port", "0", "--cluster-port", "0", "--data-port", "0"]);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(args[0], run.Error);
        Assert.Contains("--help", run.Error);
        Assert.DoesNotContain("is running", run.Output);
    }

    [Fact]
    public async Task Configuration_keys_and_known_switches_are_accepted_and_the_node_starts()
    {
        using var taken = Hold(); // only to have a free port number for --admin-port, released before the node binds
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        taken.Stop();
        using var node = Start("connect-node.dll", "--admin-port", port.ToString(), "--proxy-port=0", "--tunnel-port", "0", "--cluster-port", "0", "--data-port", "0",
            "--Connect:Drain:ProxyGrace=00:00:01", "--Logging:LogLevel:Default", "Warning");
        var output = node.StandardOutput.ReadToEndAsync();
        var error = node.StandardError.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            await Connect.Testing.Eventually.AssertAsync(async () =>
            {
                Assert.False(node.HasExited, node.HasExited ? $"the node exited {node.ExitCode}: {await error}" : "");
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/healthz")).StatusCode);
            }, TimeSpan.FromSeconds(60));
        }
        finally
        {
            node.Kill(entireProcessTree: true);
            await node.WaitForExitAsync();
            await Task.WhenAll(output, error);
        }
    }

    [Theory]
    [InlineData("--proxy-port", "Connect:Proxy:Port")]
    [InlineData("--cluster-port", "Connect:Cluster:Port")]
    [InlineData("--data-port", "Connect:Cluster:DataPort")]
    public async Task A_port_in_use_ends_in_one_line_naming_the_setting_and_exit_1(string flag, string setting)
    {
        using var holder = Hold();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port.ToString();
        var args = new Dictionary<string, string> { ["--admin-port"] = "0", ["--proxy-port"] = "0", ["--tunnel-port"] = "0", ["--cluster-port"] = "0", ["--data-port"] = "0" };
        args[flag] = port;
        var run = await RunAsync("connect-node.dll", args.SelectMany(p => new[] { p.Key, p.Value }).ToArray());
        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(setting, line);
        Assert.Contains(port, line);
        Assert.Contains(flag, line);
        Assert.DoesNotContain("Exception", run.Error);
    }

    private static TcpListener Hold()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    private sealed record Run(int ExitCode, string Output, string Error);

    private static Process Start(string program, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, program));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DOTNET_NOLOGO"] = "1";
        return Process.Start(start)!;
    }

    private static async Task<Run> RunAsync(string program, params string[] args)
    {
        using var process = Start(program, args);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(ExitBound);
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"{program} {string.Join(' ', args)} did not exit within {ExitBound.TotalSeconds} s; output so far: {await output}");
        }
        return new Run(process.ExitCode, await output, await error);
    }
}
