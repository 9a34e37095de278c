using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Connect.Admin.Contracts;

namespace Connect.Ctl.Commands;

/// <summary>The <c>connect</c> palette: sessions, one session, drain, kick, and the deploy pipeline's ready check.</summary>
internal static class ConnectPalette
{
    public static Command Create(CtlContext ctl)
    {
        var address = new Option<string?>("--address", "-a") { Description = "Cluster member: akka.tcp://system@host:port or host:port (default: the node connectctl talks to)" };
        var node = new Option<string?>("--node", "-n") { Description = "Only sessions with their entity or a link on this member" };
        var state = new Option<string?>("--state", "-s") { Description = "Only sessions in this state" };
        state.AcceptOnlyFromAmong("idle", "busy", "draining", "disconnected");
        var name = new Argument<string>("name") { Description = "The session name" };
        var limit = new Option<int?>("--limit", "-l") { Description = "Sessions per page (1-1000; default: the node's, 100)" };
        var after = new Option<string?>("--after") { Description = "Start after this session name (the cursor printed at the end of the previous page)" };
        var allPages = new Option<bool>("--all") { Description = "Follow every page to the end" };
        var requests = new Option<bool>("--requests") { Description = "Instead of the links and streams: the session's last proxy requests (entry node, link node, status, bytes, error)" };
        var wait = new Option<double>("--wait") { Description = "Keep checking for up to this many seconds until the node is ready (0: check once)" };
        return new Command("connect", "Connect sessions and nodes: sessions, session, watch, drain, kick, ready")
        {
            ctl.Leaf("sessions", "Sessions in the cluster, by name, a page at a time: state, entity's node, links, streams, bytes", async (p, c, ct) =>
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
                if (ctl.Json(p))
                {
                    return all
                        ? ctl.Print(JsonSerializer.Serialize(new SessionsView(sessions, errors, null), AdminClient.Json))
                        : ctl.Print(raw);
                }
                Table.Write(ctl.Output, ["SESSION", "STATE", "ENTITY NODE", "LINKS", "STREAMS", "LINK NODES", "BYTES IN", "BYTES OUT"],
                    sessions.Select(x => (IReadOnlyList<string>)
                    [
                        x.Name, x.State, x.EntityNode, x.Links.Count.ToString(CultureInfo.InvariantCulture), x.Streams.ToString(CultureInfo.InvariantCulture),
                        x.Links.Count == 0 ? "-" : string.Join(',', x.Links.Select(l => l.Node).Distinct()),
                        Table.Bytes(x.Links.Sum(l => l.BytesIn)), Table.Bytes(x.Links.Sum(l => l.BytesOut)),
                    ]));
                ctl.WriteErrors(errors);
                if (next is not null)
                {
                    ctl.WriteErrors([$"more sessions after '{next}': run again with --after {next}, or --all"]);
                }
                return ExitCodes.Ok;
            }, node, state, limit, after, allPages, ctl.JsonOption),
            ctl.Leaf("session", "One session in detail: its links and every open stream (target, age, bytes); with --requests its last proxy requests from every node's access log", async (p, c, ct) =>
            {
                var session = p.GetValue(name)!;
                if (p.GetValue(requests))
                {
                    return await RequestsAsync(ctl, c, session, p, ct).ConfigureAwait(false);
                }
                var (detail, raw) = await c.GetAsync<SessionDetailView>("/v1/sessions/" + Uri.EscapeDataString(session), ct).ConfigureAwait(false);
                if (ctl.Json(p))
                {
                    return ctl.Print(raw);
                }
                var s = detail.Session;
                await ctl.Output.WriteLineAsync($"session {s.Name}: {s.State}; entity on {s.EntityNode}; {s.Links.Count} links, {s.Streams} streams; {s.StreamsGranted} streams granted, {s.StreamsRefused} refused, {s.PendingOpens} waiting").ConfigureAwait(false);
                await ctl.Output.WriteLineAsync().ConfigureAwait(false);
                var now = DateTimeOffset.UtcNow;
                Table.Write(ctl.Output, ["LINK", "NODE", "AGE", "STREAMS", "OPENED", "BYTES IN", "BYTES OUT", "GOING AWAY"],
                    s.Links.Select(l => (IReadOnlyList<string>)
                    [
                        l.LinkId, l.Node, Table.Age(now - l.Since), l.Streams.ToString(CultureInfo.InvariantCulture), l.StreamsOpened.ToString(CultureInfo.InvariantCulture),
                        Table.Bytes(l.BytesIn), Table.Bytes(l.BytesOut), l.GoingAway ? "yes" : "no",
                    ]));
                await ctl.Output.WriteLineAsync().ConfigureAwait(false);
                if (detail.Streams.Count == 0)
                {
                    await ctl.Output.WriteLineAsync("no open streams").ConfigureAwait(false);
                }
                else
                {
                    Table.Write(ctl.Output, ["STREAM", "LINK", "TARGET", "AGE", "BYTES IN", "BYTES OUT"],
                        detail.Streams.Select(x => (IReadOnlyList<string>)
                        [
                            x.StreamId.ToString(CultureInfo.InvariantCulture), x.LinkId, x.Target, Table.Age(TimeSpan.FromSeconds(x.AgeSeconds)), Table.Bytes(x.BytesIn), Table.Bytes(x.BytesOut),
                        ]));
                }
                ctl.WriteErrors(detail.Errors);
                return ExitCodes.Ok;
            }, name, requests, ctl.JsonOption),
            LiveCommands.Watch(ctl),
            ctl.Leaf("drain", "Drain a node: readiness 503, GOAWAY to every link (idle ones close now, busy ones when their streams end); returns at once", (p, c, ct) =>
                ctl.ActionAsync(c, "/v1/nodes/drain" + (p.GetValue(address) is { } a ? "?address=" + Uri.EscapeDataString(a) : ""), p, ct), address, ctl.JsonOption),
            ctl.Leaf("kick", "Send GOAWAY to a session's links: the agent reconnects (to another node if this one drains), open streams finish", (p, c, ct) =>
                ctl.ActionAsync(c, "/v1/sessions/" + Uri.EscapeDataString(p.GetValue(name)!) + "/kick", p, ct), name, ctl.JsonOption),
            ctl.Leaf("ready", "Can this node be terminated? Exit 0 only when it holds no links and no streams, else 1 (the deploy pipeline's check)", async (p, c, ct) =>
            {
                var given = p.GetValue(address);
                var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Math.Max(0, p.GetValue(wait)));
                while (true)
                {
                    // With -a the node connectctl talks to asks only that member (its own counts and its own verdict).
                    var (nodes, _) = await c.GetAsync<NodesView>(given is null ? "/v1/nodes" : "/v1/nodes?address=" + Uri.EscapeDataString(given), ct).ConfigureAwait(false);
                    var matches = nodes.Nodes.Where(n => given is null ? n.Self : MemberAddress.Matches(n.Address, given)).ToList();
                    if (matches.Count != 1)
                    {
                        throw new CtlException(ExitCodes.Failed, $"no single cluster member matches '{given}' (members: {string.Join(", ", nodes.Nodes.Select(n => n.Address))})");
                    }
                    var n = matches[0];
                    if (n.ReadyToTerminate || DateTimeOffset.UtcNow >= deadline)
                    {
                        if (ctl.Json(p))
                        {
                            await ctl.Output.WriteLineAsync(JsonSerializer.Serialize(n, new JsonSerializerOptions(AdminClient.Json) { WriteIndented = true })).ConfigureAwait(false);
                        }
                        else
                        {
                            await ctl.Output.WriteLineAsync(n.ReadyToTerminate
                                ? $"ready: {n.Address} holds no links and no streams{(n.Draining == true ? " (drained)" : "")}"
                                : n.Error is not null
                                    ? $"not ready: {n.Address} did not answer: {n.Error}"
                                    : $"not ready: {n.Address} holds {n.Links} links and {n.Streams} streams{(n.Draining == true ? " (draining)" : " (not draining: run 'connect drain')")}").ConfigureAwait(false);
                        }
                        return n.ReadyToTerminate ? ExitCodes.Ok : ExitCodes.NotReady;
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                }
            }, address, wait, ctl.JsonOption),
        };
    }

    /// <summary><c>connect session NAME --requests</c>: the session's last requests, oldest first, as a table.</summary>
    private static async Task<int> RequestsAsync(CtlContext ctl, AdminClient client, string session, ParseResult parse, CancellationToken cancellationToken)
    {
        var (view, raw) = await client.GetAsync<SessionRequestsView>("/v1/sessions/" + Uri.EscapeDataString(session) + "/requests", cancellationToken).ConfigureAwait(false);
        if (ctl.Json(parse))
        {
            return ctl.Print(raw);
        }
        if (view.Requests.Count == 0)
        {
            await ctl.Output.WriteLineAsync($"no requests of session {session} in any node's access log").ConfigureAwait(false);
        }
        else
        {
            Table.Write(ctl.Output, ["TIME", "METHOD", "TARGET", "STATUS", "UP", "DOWN", "MS", "ENTRY NODE", "LINK NODE", "ERROR"],
                view.Requests.Select(r => (IReadOnlyList<string>)
                [
                    r.At.ToUniversalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture), r.Method, r.Target, r.Status == 0 ? "-" : r.Status.ToString(CultureInfo.InvariantCulture),
                    Table.Bytes(r.BytesUp), Table.Bytes(r.BytesDown), r.DurationMs.ToString("0.#", CultureInfo.InvariantCulture), r.EntryNode, r.LinkNode,
                    r.Error is null ? "-" : r.Error + (string.IsNullOrEmpty(r.Detail) ? "" : ": " + r.Detail),
                ]));
        }
        ctl.WriteErrors(view.Errors);
        return ExitCodes.Ok;
    }
}
