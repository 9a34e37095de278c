using System.CommandLine;
using System.CommandLine.Parsing;
using Connect.Ctl.Commands;

namespace Connect.Ctl;

/// <summary>
/// connectctl's core: <c>connectctl [host:port] &lt;palette&gt; &lt;command&gt; [switches]</c>, the grammar of Petabridge's
/// pbm (which is not obtainable here) over a Connect node's admin API. Writes to the given writers and returns the
/// exit code, so tests call it as the shell would. With a host and no command it reads commands from the input.
/// Each palette's commands live in their own file under <c>Commands/</c>.
/// </summary>
public sealed class ConnectCtl(HttpMessageHandler? handler = null, Func<string, string?>? environment = null)
{
    public const string DefaultServer = "127.0.0.1:9110";
    public const string TokenVariable = "CONNECT_ADMIN_TOKEN";

    private static readonly string[] Palettes = ["cluster", "cluster-sharding", "connect"];

    private readonly Func<string, string?> _environment = environment ?? Environment.GetEnvironmentVariable;

    public async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, TextReader? input = null, CancellationToken cancellationToken = default)
    {
        var server = DefaultServer;
        var rest = args.ToList();
        if (rest.Count > 0 && !rest[0].StartsWith('-') && !Palettes.Contains(rest[0]) && rest[0] != "help")
        {
            server = rest[0].Contains(':') ? rest[0] : rest[0] + ":9110";
            rest.RemoveAt(0);
        }
        if (input is not null && !rest.Any(Palettes.Contains) && !rest.Any(a => a is "-h" or "--help" or "-?" or "--version"))
        {
            return await InteractiveAsync(server, rest, input, output, error, cancellationToken).ConfigureAwait(false);
        }
        return await RunOnceAsync(server, rest, output, error, cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> RunOnceAsync(string server, IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var parse = BuildCommands(server, output, error).Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors)
            {
                await error.WriteLineAsync($"connectctl: {problem.Message}").ConfigureAwait(false);
            }
            await error.WriteLineAsync("run 'connectctl --help' or 'connectctl <palette> <command> --help'").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>pbm's interactive mode: one prompt, many commands against one node; options given at launch (--token, --json) apply to each.</summary>
    private async Task<int> InteractiveAsync(string server, IReadOnlyList<string> launchOptions, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        await output.WriteLineAsync($"connectctl: connected to {server}. Type a command (e.g. 'cluster show', 'connect sessions'), 'help', or 'exit'.").ConfigureAwait(false);
        while (!cancellationToken.IsCancellationRequested)
        {
            await output.WriteAsync($"connectctl {server}> ").ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            var line = await input.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                await output.WriteLineAsync().ConfigureAwait(false);
                break;
            }
            // System.CommandLine splits the line as a shell would (double quotes keep spaces).
            var words = CommandLineParser.SplitCommandLine(line).ToList();
            if (words.Count == 0)
            {
                continue;
            }
            if (words[0] is "exit" or "quit")
            {
                break;
            }
            if (words[0] == "help")
            {
                words = ["--help"];
            }
            var code = await RunOnceAsync(server, [.. words, .. launchOptions], output, error, cancellationToken).ConfigureAwait(false);
            if (code != ExitCodes.Ok)
            {
                await output.WriteLineAsync($"(exit {code})").ConfigureAwait(false);
            }
        }
        return ExitCodes.Ok;
    }

    private RootCommand BuildCommands(string server, TextWriter output, TextWriter error)
    {
        var ctl = new CtlContext(server, output, error, handler, _environment);
        return new RootCommand($"connectctl: inspect and operate a Connect cluster through a node's admin API.\nUsage: connectctl [host:port] <palette> <command> [switches]   (host:port defaults to {DefaultServer}; no command = interactive)\nExit codes: 0 ok, 1 not ready / check failed, 2 usage, 3 cannot reach the node, 4 unauthorized, 5 the node answered with an error.")
        {
            ctl.Token,
            ctl.JsonOption,
            ClusterPalette.Create(ctl),
            ShardingPalette.Create(ctl),
            ConnectPalette.Create(ctl),
        };
    }
}
