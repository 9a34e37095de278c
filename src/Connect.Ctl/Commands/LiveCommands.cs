using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Connect.Admin.Contracts;

namespace Connect.Ctl.Commands;

/// <summary>
/// The commands that follow the node's live feed (<c>GET /v1/events</c>, Server-Sent Events) instead of polling:
/// <c>cluster tail</c> and <c>connect watch NAME</c>. Both print a line per change until Ctrl+C (or
/// <c>--max-events</c>); with <c>--json</c> each line is the event as JSON (<c>{"type":..,"data":..}</c>).
/// </summary>
internal static class LiveCommands
{
    public static Command Tail(CtlContext ctl)
    {
        var maxEvents = MaxEvents();
        var stats = new Option<bool>("--stats") { Description = "Also print one line per sample: links, streams and sessions per node" };
        return ctl.Leaf("tail", "Print cluster changes as the node pushes them (members, status, reachability, drains, sessions appearing, changing state or moving links) until Ctrl+C", async (p, c, ct) =>
        {
            var limit = p.GetValue(maxEvents);
            var printed = 0;
            await foreach (var (type, data) in c.EventsAsync("/v1/events", ct).ConfigureAwait(false))
            {
                var line = ctl.Json(p) ? JsonLine(type, data, type == LiveEventTypes.Change || type == LiveEventTypes.Dropped || (stats.Enabled(p) && type == LiveEventTypes.Snapshot)) : type switch
                {
                    LiveEventTypes.Change => ChangeLine(Parse<LiveChange>(data)),
                    LiveEventTypes.Dropped => DroppedLine(Parse<LiveDropped>(data)),
                    LiveEventTypes.Snapshot when p.GetValue(stats) => StatsLine(Parse<LiveSnapshot>(data)),
                    _ => null,
                };
                if (line is null)
                {
                    continue;
                }
                await ctl.Output.WriteLineAsync(line).ConfigureAwait(false);
                await ctl.Output.FlushAsync(ct).ConfigureAwait(false);
                if (limit > 0 && ++printed >= limit)
                {
                    break;
                }
            }
            return ExitCodes.Ok;
        }, ctl.JsonOption, stats, maxEvents);
    }

    public static Command Watch(CtlContext ctl)
    {
        var maxEvents = MaxEvents();
        var name = new Argument<string>("name") { Description = "The session name" };
        return ctl.Leaf("watch", "Follow one session live: a line when its state, links or streams change, and one per finished proxy request (from every node's access log), until Ctrl+C", async (p, c, ct) =>
        {
            var session = p.GetValue(name)!;
            var limit = p.GetValue(maxEvents);
            var printed = 0;
            string? lastState = null;
            var seen = new HashSet<(DateTimeOffset, string, string, string)>();
            var first = true;
            await foreach (var (type, data) in c.EventsAsync("/v1/events?session=" + Uri.EscapeDataString(session), ct).ConfigureAwait(false))
            {
                if (type != LiveEventTypes.Session && type != LiveEventTypes.Dropped)
                {
                    continue;
                }
                var lines = new List<string>();
                if (type == LiveEventTypes.Dropped)
                {
                    lines.Add(ctl.Json(p) ? JsonLine(type, data, true)! : DroppedLine(Parse<LiveDropped>(data)));
                }
                else
                {
                    var live = Parse<LiveSession>(data);
                    var state = StateLine(live);
                    if (state != lastState)
                    {
                        lines.Add(ctl.Json(p) ? JsonLine(type, data, true)! : $"{Time(live.At)}  {state}");
                        lastState = state;
                    }
                    // The requests already listed when the watch starts are history: the last few are shown once, then only new ones.
                    var fresh = live.Requests.Where(r => seen.Add((r.At, r.EntryNode, r.Method, r.Target))).ToList();
                    lines.AddRange((first ? fresh.TakeLast(5) : fresh).Select(r => ctl.Json(p) ? JsonSerializer.Serialize(new { type = "request", data = r }, AdminClient.Json) : RequestLine(r)));
                    first = false;
                }
                foreach (var line in lines)
                {
                    await ctl.Output.WriteLineAsync(line).ConfigureAwait(false);
                    if (limit > 0 && ++printed >= limit)
                    {
                        return ExitCodes.Ok;
                    }
                }
                await ctl.Output.FlushAsync(ct).ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }, name, ctl.JsonOption, maxEvents);
    }

    /// <summary>One request as <c>connect watch</c> and <c>connect session --requests</c> print it.</summary>
    public static string RequestLine(RequestView r) =>
        $"{Time(r.At)}  request  {r.Method} {r.Target} {(r.Status == 0 ? "-" : r.Status.ToString(CultureInfo.InvariantCulture))} up {Table.Bytes(r.BytesUp)} down {Table.Bytes(r.BytesDown)} {r.DurationMs.ToString("0.#", CultureInfo.InvariantCulture)} ms entry {r.EntryNode} link {r.LinkNode}{(r.Error is null ? "" : $" error {r.Error}{(string.IsNullOrEmpty(r.Detail) ? "" : ": " + r.Detail)}")}";

    private static Option<int> MaxEvents() => new("--max-events") { Description = "Stop after printing this many lines (0: until Ctrl+C)" };

    private static bool Enabled(this Option<bool> option, ParseResult parse) => parse.GetValue(option);

    private static T Parse<T>(string data) =>
        JsonSerializer.Deserialize<T>(data, AdminClient.Json) ?? throw new CtlException(ExitCodes.Unreachable, $"the event stream carried an empty {typeof(T).Name}");

    private static string? JsonLine(string type, string data, bool wanted)
    {
        if (!wanted)
        {
            return null;
        }
        using var document = JsonDocument.Parse(data);
        return JsonSerializer.Serialize(new { type, data = document.RootElement });
    }

    private static string Time(DateTimeOffset at) => at.ToUniversalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);

    private static string ChangeLine(LiveChange change) => $"{Time(change.At)}  {change.Kind,-11}  {change.Subject}  {change.Detail}";

    private static string DroppedLine(LiveDropped dropped) => $"{Time(DateTimeOffset.UtcNow)}  dropped      {dropped.Count} changes this terminal read too slowly to get";

    private static string StatsLine(LiveSnapshot s) =>
        $"{Time(s.At)}  stats        " + string.Join("; ", s.Nodes.Nodes.Select(n => $"{n.Address} links {Table.OrDash(n.Links)} streams {Table.OrDash(n.Streams)} sessions {Table.OrDash(n.Sessions)}"));

    private static string StateLine(LiveSession live)
    {
        if (live.Detail is null)
        {
            return $"session {live.Name}: not known to the cluster (no entity, no link)";
        }
        var s = live.Detail.Session;
        var links = s.Links.Count == 0 ? "no links" : string.Join(", ", s.Links.Select(l => $"{l.LinkId} on {l.Node}{(l.GoingAway ? " (going away)" : "")}"));
        return $"session {s.Name}: {s.State}; {links}; {s.Streams} streams; {s.StreamsGranted} granted, {s.StreamsRefused} refused";
    }
}
