using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Connect.Ctl;

/// <summary>
/// connectctl's core: <c>connectctl [host:port] &lt;palette&gt; &lt;command&gt; [switches]</c>, the grammar of Petabridge's
/// pbm (which is not obtainable here) over a Connect node's admin API. Writes to the given writers and returns the
/// exit code, so tests call it as the shell would. With a host and no command it reads commands from the input.
/// </summary>
public sealed class ConnectCtl(HttpMessageHandler? handler = null, Func<string, string?>? environment = null)
{
    public const string DefaultServer = "127.0.0.1:9110";
    public const string TokenVariable = "CONNECT_ADMIN_TOKEN";

    private static readonly string[] Palettes = ["cluster", "cluster-sharding", "connect"];
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly Func<string, string?> _environment = environment ?? Environment.GetEnvironmentVariable;

    /// <summary>How often <c>cluster tail</c> and <c>connect ready --wait</c> poll unless told otherwise.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

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
        var root = BuildCommands(server, output, error);
        var parse = root.Parse(args);
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
            var words = Split(line);
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

    /// <summary>Splits a line into words; double or single quotes keep spaces.</summary>
    public static List<string> Split(string line)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        char? quote = null;
        var inWord = false;
        foreach (var c in line)
        {
            if (quote is not null)
            {
                if (c == quote)
                {
                    quote = null;
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }
        if (inWord)
        {
            words.Add(current.ToString());
        }
        return words;
    }

    private RootCommand BuildCommands(string server, TextWriter output, TextWriter error)
    {
        var token = new Option<string?>("--token", "-t") { Description = $"Admin API token (default: ${TokenVariable})", Recursive = true };
        var json = new Option<bool>("--json") { Description = "Print the admin API's JSON instead of a table", Recursive = true };
        var address = new Option<string?>("--address", "-a") { Description = "Cluster member: akka.tcp://system@host:port or host:port (default: the node connectctl talks to)" };
        var requiredAddress = new Option<string>("--address", "-a") { Description = "Cluster member: akka.tcp://system@host:port or host:port", Required = true };

        var root = new RootCommand($"connectctl: inspect and operate a Connect cluster through a node's admin API.\nUsage: connectctl [host:port] <palette> <command> [switches]   (host:port defaults to {DefaultServer}; no command = interactive)\nExit codes: 0 ok, 1 not ready / check failed, 2 usage, 3 cannot reach the node, 4 unauthorized, 5 the node answered with an error.")
        {
            token,
            json,
        };

        Command Leaf(string name, string description, Func<ParseResult, AdminClient, CancellationToken, Task<int>> action, params Symbol[] symbols)
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
                http.Timeout = TimeSpan.FromSeconds(30);
                var client = new AdminClient(http, server, parse.GetValue(token) ?? _environment(TokenVariable));
                try
                {
                    return await action(parse, client, ct).ConfigureAwait(false);
                }
                catch (CtlException e)
                {
                    await error.WriteLineAsync($"connectctl: {e.Message}").ConfigureAwait(false);
                    return e.ExitCode;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return ExitCodes.Ok;
                }
            });
            return command;
        }

        bool Json(ParseResult parse) => parse.GetValue(json);

        // ----- cluster -----
        var interval = new Option<int>("--interval") { Description = "Milliseconds between polls", DefaultValueFactory = _ => (int)PollInterval.TotalMilliseconds };
        var maxEvents = new Option<int>("--max-events") { Description = "Stop after this many changes (0: until Ctrl+C)" };
        var cluster = new Command("cluster", "Cluster membership: show, status, leader, tail, leave, down, down-unreachable")
        {
            Leaf("show", "Every member: status, reachability, links, streams, entities, draining, safe to stop (drained: no link, no stream, no proxy request)", async (p, c, ct) =>
            {
                var (nodes, raw) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                if (Json(p))
                {
                    return Print(output, raw);
                }
                Table.Write(output, ["ADDRESS", "STATUS", "REACHABLE", "FLAGS", "ROLES", "LINKS", "STREAMS", "ENTITIES", "DRAINING", "SAFE-TO-STOP"],
                    nodes.Nodes.Select(n => (IReadOnlyList<string>)
                    [
                        n.Address, n.Status, n.Reachable ? "yes" : "NO", Flags(n), n.Roles.Count == 0 ? "-" : string.Join(',', n.Roles),
                        Table.OrDash(n.Links), Table.OrDash(n.Streams), Table.OrDash(n.Entities),
                        n.Draining is null ? "-" : n.Draining.Value ? "yes" : "no", n.ReadyToTerminate ? "yes" : "no",
                    ]));
                WriteErrors(error, nodes.Nodes.Where(n => n.Error is not null).Select(n => $"{n.Address}: {n.Error}"));
                return ExitCodes.Ok;
            }, json),
            Leaf("status", "One line: members by status, unreachable, leader (exit 1 unless every member is Up and reachable)", async (p, c, ct) =>
            {
                var (nodes, raw) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                var healthy = nodes.Nodes.All(n => n.Reachable && n.Status == "Up");
                if (Json(p))
                {
                    Print(output, raw);
                }
                else
                {
                    var byStatus = string.Join(", ", nodes.Nodes.GroupBy(n => n.Status).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"));
                    var unreachable = nodes.Nodes.Count(n => !n.Reachable);
                    await output.WriteLineAsync($"{(healthy ? "healthy" : "NOT HEALTHY")}: {nodes.Nodes.Count} members ({byStatus}), {unreachable} unreachable, leader {nodes.Leader ?? "none"}, answered by {nodes.Self}").ConfigureAwait(false);
                }
                return healthy ? ExitCodes.Ok : ExitCodes.NotReady;
            }, json),
            Leaf("leader", "The cluster leader's address (exit 1 when there is none)", async (p, c, ct) =>
            {
                var (nodes, _) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                if (Json(p))
                {
                    await output.WriteLineAsync(JsonSerializer.Serialize(new { leader = nodes.Leader })).ConfigureAwait(false);
                }
                else
                {
                    await output.WriteLineAsync(nodes.Leader ?? "no leader").ConfigureAwait(false);
                }
                return nodes.Leader is null ? ExitCodes.NotReady : ExitCodes.Ok;
            }, json),
            Leaf("tail", "Print membership changes as they happen (joins, status changes, unreachable, removals) until Ctrl+C", async (p, c, ct) =>
            {
                var known = new Dictionary<string, (string Status, bool Reachable)>();
                var events = 0;
                var limit = p.GetValue(maxEvents);
                var every = TimeSpan.FromMilliseconds(Math.Max(50, p.GetValue(interval)));
                while (!ct.IsCancellationRequested)
                {
                    var (nodes, _) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                    var now = DateTimeOffset.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture);
                    var changes = new List<(string Kind, string Address, string Status, bool Reachable)>();
                    foreach (var n in nodes.Nodes)
                    {
                        if (!known.TryGetValue(n.Address, out var before))
                        {
                            changes.Add(("member", n.Address, n.Status, n.Reachable));
                        }
                        else if (before.Status != n.Status)
                        {
                            changes.Add(("status", n.Address, n.Status, n.Reachable));
                        }
                        else if (before.Reachable != n.Reachable)
                        {
                            changes.Add((n.Reachable ? "reachable" : "unreachable", n.Address, n.Status, n.Reachable));
                        }
                        known[n.Address] = (n.Status, n.Reachable);
                    }
                    foreach (var gone in known.Keys.Except(nodes.Nodes.Select(n => n.Address)).ToList())
                    {
                        changes.Add(("removed", gone, "Removed", false));
                        known.Remove(gone);
                    }
                    foreach (var change in changes)
                    {
                        await output.WriteLineAsync(Json(p)
                            ? JsonSerializer.Serialize(new { time = now, kind = change.Kind, address = change.Address, status = change.Status, reachable = change.Reachable })
                            : $"{now}  {change.Kind,-11}  {change.Address}  {change.Status}{(change.Reachable ? "" : " (unreachable)")}").ConfigureAwait(false);
                        if (limit > 0 && ++events >= limit)
                        {
                            return ExitCodes.Ok;
                        }
                    }
                    await output.FlushAsync(ct).ConfigureAwait(false);
                    await Task.Delay(every, ct).ConfigureAwait(false);
                }
                return ExitCodes.Ok;
            }, json, interval, maxEvents),
            Leaf("leave", "Ask a member to leave the cluster gracefully (it drains as it shuts down)", (p, c, ct) =>
                ActionAsync(c, $"/v1/nodes/leave?address={Uri.EscapeDataString(p.GetValue(requiredAddress)!)}", p, ct), requiredAddress, json),
            Leaf("down", "Mark a member down (for a member that is gone; its shards move elsewhere)", (p, c, ct) =>
                ActionAsync(c, $"/v1/nodes/down?address={Uri.EscapeDataString(p.GetValue(requiredAddress)!)}", p, ct), requiredAddress, json),
            Leaf("down-unreachable", "Mark every unreachable member down", (p, c, ct) => ActionAsync(c, "/v1/nodes/down-unreachable", p, ct), json),
        };

        // ----- cluster-sharding -----
        var regionType = new Option<string?>("--region", "-r") { Description = "Only this region type (e.g. session)" };
        var sharding = new Command("cluster-sharding", "Cluster sharding: regions, region-stats")
        {
            Leaf("regions", "Every shard region type with its shard and entity totals", async (p, c, ct) =>
            {
                var (view, raw) = await c.GetAsync<ShardingView>("/v1/sharding", ct).ConfigureAwait(false);
                if (Json(p))
                {
                    return Print(output, raw);
                }
                Table.Write(output, ["REGION", "SHARDS", "ENTITIES", "NODES"],
                    view.Regions.Select(r => (IReadOnlyList<string>)[r.TypeName, r.Shards.ToString(CultureInfo.InvariantCulture), r.Entities.ToString(CultureInfo.InvariantCulture), r.Nodes.Count.ToString(CultureInfo.InvariantCulture)]));
                WriteErrors(error, view.Regions.Where(r => r.Error is not null).Select(r => $"{r.TypeName}: {r.Error}"));
                return ExitCodes.Ok;
            }, json),
            Leaf("region-stats", "Shards and entities per node, then entities per shard", async (p, c, ct) =>
            {
                var (view, raw) = await c.GetAsync<ShardingView>("/v1/sharding", ct).ConfigureAwait(false);
                var wanted = p.GetValue(regionType);
                var regions = view.Regions.Where(r => wanted is null || r.TypeName == wanted).ToList();
                if (wanted is not null && regions.Count == 0)
                {
                    throw new CtlException(ExitCodes.Failed, $"no shard region '{wanted}' (known: {string.Join(", ", view.Regions.Select(r => r.TypeName))})");
                }
                if (Json(p))
                {
                    await output.WriteLineAsync(JsonSerializer.Serialize(new ShardingView(regions), new JsonSerializerOptions(AdminClient.Json) { WriteIndented = true })).ConfigureAwait(false);
                    return ExitCodes.Ok;
                }
                Table.Write(output, ["REGION", "NODE", "SHARDS", "ENTITIES"],
                    regions.SelectMany(r => r.Nodes.Select(n => (IReadOnlyList<string>)[r.TypeName, n.Address, n.Shards.ToString(CultureInfo.InvariantCulture), n.Entities.ToString(CultureInfo.InvariantCulture)])));
                await output.WriteLineAsync().ConfigureAwait(false);
                Table.Write(output, ["REGION", "NODE", "SHARD", "ENTITIES"],
                    regions.SelectMany(r => r.Nodes.SelectMany(n => n.EntitiesPerShard.Select(s => (IReadOnlyList<string>)[r.TypeName, n.Address, s.Key, s.Value.ToString(CultureInfo.InvariantCulture)]))));
                WriteErrors(error, regions.SelectMany(r => r.FailedShards.Select(s => $"{r.TypeName}: shard {s} did not answer")));
                return ExitCodes.Ok;
            }, regionType, json),
        };

        // ----- connect -----
        var node = new Option<string?>("--node", "-n") { Description = "Only sessions with their entity or a link on this member" };
        var state = new Option<string?>("--state", "-s") { Description = "Only sessions in this state" };
        state.AcceptOnlyFromAmong("idle", "busy", "draining", "disconnected");
        var name = new Argument<string>("name") { Description = "The session name" };
        var limit = new Option<int?>("--limit", "-l") { Description = "Sessions per page (1-1000; default: the node's, 100)" };
        var after = new Option<string?>("--after") { Description = "Start after this session name (the cursor printed at the end of the previous page)" };
        var allPages = new Option<bool>("--all") { Description = "Follow every page to the end" };
        var wait = new Option<double>("--wait") { Description = "Keep checking for up to this many seconds until the node is ready (0: check once)" };
        var connect = new Command("connect", "Connect sessions and nodes: sessions, session, drain, kick, ready")
        {
            Leaf("sessions", "Sessions in the cluster, by name, a page at a time: state, entity's node, links, streams, bytes", async (p, c, ct) =>
            {
                var query = new List<string>();
                if (p.GetValue(node) is { } n)
                {
                    query.Add("node=" + Uri.EscapeDataString(n));
                }
                if (p.GetValue(state) is { } s)
                {
                    query.Add("state=" + s);
                }
                if (p.GetValue(limit) is { } l)
                {
                    query.Add("limit=" + l.ToString(CultureInfo.InvariantCulture));
                }
                var all = p.GetValue(allPages);
                var sessions = new List<SessionView>();
                var errors = new List<string>();
                string? cursor = p.GetValue(after);
                string raw;
                string? next;
                do
                {
                    var page = query.Concat(cursor is null ? [] : ["after=" + Uri.EscapeDataString(cursor)]).ToList();
                    var (view, body) = await c.GetAsync<SessionsView>("/v1/sessions" + (page.Count > 0 ? "?" + string.Join('&', page) : ""), ct).ConfigureAwait(false);
                    sessions.AddRange(view.Sessions);
                    errors.AddRange(view.Errors.Where(e => !errors.Contains(e)));
                    raw = body;
                    if (all && view.Sessions.Count == 0 && view.Next is not null && view.Next == cursor)
                    {
                        throw new CtlException(ExitCodes.Failed, $"the cluster did not answer for the sessions after '{cursor}': {string.Join("; ", view.Errors)}");
                    }
                    next = view.Next;
                    cursor = next;
                }
                while (all && next is not null);
                if (Json(p))
                {
                    return all
                        ? Print(output, JsonSerializer.Serialize(new SessionsView(sessions, errors, null), AdminClient.Json))
                        : Print(output, raw);
                }
                Table.Write(output, ["SESSION", "STATE", "ENTITY NODE", "LINKS", "STREAMS", "LINK NODES", "BYTES IN", "BYTES OUT"],
                    sessions.Select(x => (IReadOnlyList<string>)
                    [
                        x.Name, x.State, x.EntityNode, x.Links.Count.ToString(CultureInfo.InvariantCulture), x.Streams.ToString(CultureInfo.InvariantCulture),
                        x.Links.Count == 0 ? "-" : string.Join(',', x.Links.Select(l => l.Node).Distinct()),
                        Table.Bytes(x.Links.Sum(l => l.BytesIn)), Table.Bytes(x.Links.Sum(l => l.BytesOut)),
                    ]));
                WriteErrors(error, errors);
                if (next is not null)
                {
                    WriteErrors(error, [$"more sessions after '{next}': run again with --after {next}, or --all"]);
                }
                return ExitCodes.Ok;
            }, node, state, limit, after, allPages, json),
            Leaf("session", "One session in detail: its links and every open stream (target, age, bytes)", async (p, c, ct) =>
            {
                var session = p.GetValue(name)!;
                var (detail, raw) = await c.GetAsync<SessionDetailView>("/v1/sessions/" + Uri.EscapeDataString(session), ct).ConfigureAwait(false);
                if (Json(p))
                {
                    return Print(output, raw);
                }
                var s = detail.Session;
                await output.WriteLineAsync($"session {s.Name}: {s.State}; entity on {s.EntityNode}; {s.Links.Count} links, {s.Streams} streams; {s.StreamsGranted} streams granted, {s.StreamsRefused} refused, {s.PendingOpens} waiting").ConfigureAwait(false);
                await output.WriteLineAsync().ConfigureAwait(false);
                var now = DateTimeOffset.UtcNow;
                Table.Write(output, ["LINK", "NODE", "AGE", "STREAMS", "OPENED", "BYTES IN", "BYTES OUT", "GOING AWAY"],
                    s.Links.Select(l => (IReadOnlyList<string>)
                    [
                        l.LinkId, l.Node, Table.Age(now - l.Since), l.Streams.ToString(CultureInfo.InvariantCulture), l.StreamsOpened.ToString(CultureInfo.InvariantCulture),
                        Table.Bytes(l.BytesIn), Table.Bytes(l.BytesOut), l.GoingAway ? "yes" : "no",
                    ]));
                await output.WriteLineAsync().ConfigureAwait(false);
                if (detail.Streams.Count == 0)
                {
                    await output.WriteLineAsync("no open streams").ConfigureAwait(false);
                }
                else
                {
                    Table.Write(output, ["STREAM", "LINK", "TARGET", "AGE", "BYTES IN", "BYTES OUT"],
                        detail.Streams.Select(x => (IReadOnlyList<string>)
                        [
                            x.StreamId.ToString(CultureInfo.InvariantCulture), x.LinkId, x.Target, Table.Age(TimeSpan.FromSeconds(x.AgeSeconds)), Table.Bytes(x.BytesIn), Table.Bytes(x.BytesOut),
                        ]));
                }
                WriteErrors(error, detail.Errors);
                return ExitCodes.Ok;
            }, name, json),
            Leaf("drain", "Drain a node: readiness 503, GOAWAY to every link (idle ones close now, busy ones when their streams end); returns at once", (p, c, ct) =>
                ActionAsync(c, "/v1/nodes/drain" + (p.GetValue(address) is { } a ? "?address=" + Uri.EscapeDataString(a) : ""), p, ct), address, json),
            Leaf("kick", "Send GOAWAY to a session's links: the agent reconnects (to another node if this one drains), open streams finish", (p, c, ct) =>
                ActionAsync(c, "/v1/sessions/" + Uri.EscapeDataString(p.GetValue(name)!) + "/kick", p, ct), name, json),
            Leaf("ready", "Can this node be terminated? Exit 0 only when it holds no links and no streams, else 1 (the deploy pipeline's check)", async (p, c, ct) =>
            {
                var given = p.GetValue(address);
                var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Math.Max(0, p.GetValue(wait)));
                while (true)
                {
                    // With -a the node connectctl talks to asks only that member (its own counts and its own verdict).
                    var (nodes, _) = await c.GetAsync<NodesView>(given is null ? "/v1/nodes" : "/v1/nodes?address=" + Uri.EscapeDataString(given), ct).ConfigureAwait(false);
                    var matches = nodes.Nodes.Where(n => given is null ? n.Self : Matches(n.Address, given)).ToList();
                    if (matches.Count != 1)
                    {
                        throw new CtlException(ExitCodes.Failed, $"no single cluster member matches '{given}' (members: {string.Join(", ", nodes.Nodes.Select(n => n.Address))})");
                    }
                    var n = matches[0];
                    if (n.ReadyToTerminate || DateTimeOffset.UtcNow >= deadline)
                    {
                        if (Json(p))
                        {
                            await output.WriteLineAsync(JsonSerializer.Serialize(n, new JsonSerializerOptions(AdminClient.Json) { WriteIndented = true })).ConfigureAwait(false);
                        }
                        else
                        {
                            await output.WriteLineAsync(n.ReadyToTerminate
                                ? $"ready: {n.Address} holds no links and no streams{(n.Draining == true ? " (drained)" : "")}"
                                : n.Error is not null
                                    ? $"not ready: {n.Address} did not answer: {n.Error}"
                                    : $"not ready: {n.Address} holds {n.Links} links and {n.Streams} streams{(n.Draining == true ? " (draining)" : " (not draining: run 'connect drain')")}").ConfigureAwait(false);
                        }
                        return n.ReadyToTerminate ? ExitCodes.Ok : ExitCodes.NotReady;
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                }
            }, address, wait, json),
        };

        root.Add(cluster);
        root.Add(sharding);
        root.Add(connect);
        return root;

        async Task<int> ActionAsync(AdminClient c, string path, ParseResult p, CancellationToken ct)
        {
            var (result, raw) = await c.PostAsync<ActionResult>(path, ct).ConfigureAwait(false);
            if (Json(p))
            {
                return Print(output, raw);
            }
            await output.WriteLineAsync($"{result.Action} {result.Target}: {result.Message}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }
    }

    private static string Flags(NodeView n) => (n.Self, n.Leader) switch
    {
        (true, true) => "self,leader",
        (true, false) => "self",
        (false, true) => "leader",
        _ => "-",
    };

    /// <summary>Full address, or host:port as operators type it.</summary>
    public static bool Matches(string full, string given) =>
        string.Equals(full, given.Trim(), StringComparison.OrdinalIgnoreCase) || full.EndsWith("@" + given.Trim(), StringComparison.OrdinalIgnoreCase);

    private static int Print(TextWriter output, string raw)
    {
        using var document = JsonDocument.Parse(raw);
        output.WriteLine(JsonSerializer.Serialize(document.RootElement, Indented));
        return ExitCodes.Ok;
    }

    private static void WriteErrors(TextWriter error, IEnumerable<string> errors)
    {
        foreach (var e in errors)
        {
            error.WriteLine($"warning: {e}");
        }
    }
}
