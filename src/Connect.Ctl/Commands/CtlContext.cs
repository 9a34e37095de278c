using System.CommandLine;
using System.Text.Json;
using Connect.Admin.Contracts;

namespace Connect.Ctl.Commands;

/// <summary>
/// What every palette's commands share: the node to talk to, where to write, the recursive <c>--token</c> and
/// <c>--json</c> switches, and the way a command becomes an action (an <see cref="AdminClient"/> per run, failures
/// turned into exit codes).
/// </summary>
internal sealed class CtlContext(string server, TextWriter output, TextWriter error, HttpMessageHandler? handler, Func<string, string?> environment)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public Option<string?> Token { get; } = new("--token", "-t") { Description = $"Admin API token (default: ${ConnectCtl.TokenVariable})", Recursive = true };

    public Option<bool> JsonOption { get; } = new("--json") { Description = "Print the admin API's JSON instead of a table", Recursive = true };

    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    public bool Json(ParseResult parse) => parse.GetValue(JsonOption);

    /// <summary>A command with its switches and an action that gets a ready <see cref="AdminClient"/>.</summary>
    public Command Leaf(string name, string description, Func<ParseResult, AdminClient, CancellationToken, Task<int>> action, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Option o: command.Add(o); break;
                case Argument a: command.Add(a); break;
            }
        }
        command.SetAction(async (parse, ct) =>
        {
            using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
            // Covers a request up to its response headers; an event stream (cluster tail) is read past that.
            http.Timeout = TimeSpan.FromSeconds(30);
            var client = new AdminClient(http, server, parse.GetValue(Token) ?? environment(ConnectCtl.TokenVariable));
            try
            {
                return await action(parse, client, ct).ConfigureAwait(false);
            }
            catch (CtlException e)
            {
                await Error.WriteLineAsync($"connectctl: {e.Message}").ConfigureAwait(false);
                return e.ExitCode;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return ExitCodes.Ok;
            }
        });
        return command;
    }

    /// <summary>POSTs an action (drain, leave, down, kick) and prints its one-line answer.</summary>
    public async Task<int> ActionAsync(AdminClient client, string path, ParseResult parse, CancellationToken cancellationToken)
    {
        var (result, raw) = await client.PostAsync<ActionResult>(path, cancellationToken).ConfigureAwait(false);
        if (Json(parse))
        {
            return Print(raw);
        }
        await Output.WriteLineAsync($"{result.Action} {result.Target}: {result.Message}").ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>The API's JSON, indented.</summary>
    public int Print(string raw)
    {
        using var document = JsonDocument.Parse(raw);
        Output.WriteLine(JsonSerializer.Serialize(document.RootElement, Indented));
        return ExitCodes.Ok;
    }

    public void WriteErrors(IEnumerable<string> errors)
    {
        foreach (var e in errors)
        {
            Error.WriteLine($"warning: {e}");
        }
    }
}
