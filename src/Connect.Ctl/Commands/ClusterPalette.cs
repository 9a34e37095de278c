using System.CommandLine;
using System.Text.Json;
using Connect.Admin.Contracts;

namespace Connect.Ctl.Commands;

/// <summary>pbm's <c>cluster</c> palette: membership (show, status, leader, tail) and membership actions (leave, down).</summary>
internal static class ClusterPalette
{
    public static Command Create(CtlContext ctl)
    {
        var requiredAddress = new Option<string>("--address", "-a") { Description = "Cluster member: akka.tcp://system@host:port or host:port", Required = true };
        return new Command("cluster", "Cluster membership: show, status, leader, tail, leave, down, down-unreachable")
        {
            ctl.Leaf("show", "Every member: status, reachability, links, streams, entities, draining, safe to stop (drained: no link, no stream, no proxy request)", async (p, c, ct) =>
            {
                var (nodes, raw) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                if (ctl.Json(p))
                {
                    return ctl.Print(raw);
                }
                Table.Write(ctl.Output, ["ADDRESS", "STATUS", "REACHABLE", "FLAGS", "ROLES", "LINKS", "STREAMS", "ENTITIES", "DRAINING", "SAFE-TO-STOP"],
                    nodes.Nodes.Select(n => (IReadOnlyList<string>)
                    [
                        n.Address, n.Status, n.Reachable ? "yes" : "NO", Flags(n), n.Roles.Count == 0 ? "-" : string.Join(',', n.Roles),
                        Table.OrDash(n.Links), Table.OrDash(n.Streams), Table.OrDash(n.Entities),
                        n.Draining is null ? "-" : n.Draining.Value ? "yes" : "no", n.ReadyToTerminate ? "yes" : "no",
                    ]));
                ctl.WriteErrors(nodes.Nodes.Where(n => n.Error is not null).Select(n => $"{n.Address}: {n.Error}"));
                return ExitCodes.Ok;
            }, ctl.JsonOption),
            ctl.Leaf("status", "One line: members by status, unreachable, leader (exit 1 unless every member is Up and reachable)", async (p, c, ct) =>
            {
                var (nodes, raw) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                var healthy = nodes.Nodes.All(n => n.Reachable && n.Status == "Up");
                if (ctl.Json(p))
                {
                    ctl.Print(raw);
                }
                else
                {
                    var byStatus = string.Join(", ", nodes.Nodes.GroupBy(n => n.Status).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"));
                    var unreachable = nodes.Nodes.Count(n => !n.Reachable);
                    await ctl.Output.WriteLineAsync($"{(healthy ? "healthy" : "NOT HEALTHY")}: {nodes.Nodes.Count} members ({byStatus}), {unreachable} unreachable, leader {nodes.Leader ?? "none"}, answered by {nodes.Self}").ConfigureAwait(false);
                }
                return healthy ? ExitCodes.Ok : ExitCodes.NotReady;
            }, ctl.JsonOption),
            ctl.Leaf("leader", "The cluster leader's address (exit 1 when there is none)", async (p, c, ct) =>
            {
                var (nodes, _) = await c.GetAsync<NodesView>("/v1/nodes", ct).ConfigureAwait(false);
                if (ctl.Json(p))
                {
                    await ctl.Output.WriteLineAsync(JsonSerializer.Serialize(new { leader = nodes.Leader })).ConfigureAwait(false);
                }
                else
                {
                    await ctl.Output.WriteLineAsync(nodes.Leader ?? "no leader").ConfigureAwait(false);
                }
                return nodes.Leader is null ? ExitCodes.NotReady : ExitCodes.Ok;
            }, ctl.JsonOption),
            LiveCommands.Tail(ctl),
            ctl.Leaf("leave", "Ask a member to leave the cluster gracefully (it drains as it shuts down)", (p, c, ct) =>
                ctl.ActionAsync(c, $"/v1/nodes/leave?address={Uri.EscapeDataString(p.GetValue(requiredAddress)!)}", p, ct), requiredAddress, ctl.JsonOption),
            ctl.Leaf("down", "Mark a member down (for a member that is gone; its shards move elsewhere)", (p, c, ct) =>
                ctl.ActionAsync(c, $"/v1/nodes/down?address={Uri.EscapeDataString(p.GetValue(requiredAddress)!)}", p, ct), requiredAddress, ctl.JsonOption),
            ctl.Leaf("down-unreachable", "Mark every unreachable member down", (p, c, ct) => ctl.ActionAsync(c, "/v1/nodes/down-unreachable", p, ct), ctl.JsonOption),
        };
    }

    private static string Flags(NodeView n) => (n.Self, n.Leader) switch
    {
        (true, true) => "self,leader",
        (true, false) => "self",
        (false, true) => "leader",
        _ => "-",
    };
}
