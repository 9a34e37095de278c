using System.Text.Json;
using Connect.Admin.Tests.Support;
using Connect.Ctl;
using Connect.Testing;

namespace Connect.Admin.Tests;

/// <summary>connectctl against the live cluster: tables, JSON, exit codes, interactive mode.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ConnectCtlTests(ClusterFixture cluster)
{
    [Fact]
    public async Task Cluster_show_prints_a_row_per_member_and_json_on_request()
    {
        var table = await Eventually.AssertAsync(async () =>
        {
            var r = await AdminApi.CtlAsync(cluster.Node2, "cluster", "show");
            Assert.Equal(ExitCodes.Ok, r.ExitCode);
            Assert.Contains(r.Output.Split('\n'), l => l.StartsWith(cluster.Node1.Address + " ") && l.Contains(" Up ") && l.Contains(" 2 "));
            return r;
        });
        var lines = table.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["ADDRESS", "STATUS", "REACHABLE", "FLAGS", "ROLES", "LINKS", "STREAMS", "ENTITIES", "DRAINING", "SAFE-TO-STOP"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.StartsWith(cluster.Node2.Address + " ") && l.Contains("self"));
        // Internal roles (the encoded tunnel URL, Akka's data-center role) are not shown: these nodes have no configured role.
        Assert.DoesNotContain("tunnel-url-", table.Output);
        Assert.DoesNotContain("dc-default", table.Output);

        var json = await AdminApi.CtlAsync(cluster.Node2, "cluster", "show", "--json");
        Assert.Equal(ExitCodes.Ok, json.ExitCode);
        using var document = JsonDocument.Parse(json.Output);
        Assert.Equal(2, document.RootElement.GetProperty("nodes").GetArrayLength());
        Assert.Equal(cluster.Node2.Address, document.RootElement.GetProperty("self").GetString());
        Assert.All(document.RootElement.GetProperty("nodes").EnumerateArray(), n => Assert.Equal(0, n.GetProperty("roles").GetArrayLength()));
    }

    [Fact]
    public async Task Cluster_status_leader_and_tail_describe_the_membership()
    {
        var status = await AdminApi.CtlAsync(cluster.Node1, "cluster", "status");
        Assert.Equal(ExitCodes.Ok, status.ExitCode);
        Assert.StartsWith("healthy: 2 members (2 Up), 0 unreachable", status.Output);

        var leader = await AdminApi.CtlAsync(cluster.Node1, "cluster", "leader");
        Assert.Equal(ExitCodes.Ok, leader.ExitCode);
        Assert.Contains(leader.Output.Trim(), new[] { cluster.Node1.Address, cluster.Node2.Address });

        var tail = await AdminApi.CtlAsync(cluster.Node1, "cluster", "tail", "--max-events", "2");
        Assert.Equal(ExitCodes.Ok, tail.ExitCode);
        var events = tail.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, events.Length);
        Assert.All(events, e => Assert.Contains("member", e));
        Assert.Contains(events, e => e.Contains(cluster.Node2.Address + "  Up"));
    }

    [Fact]
    public async Task Connect_sessions_lists_the_sessions_as_a_table_and_as_json_with_filters()
    {
        var table = await Eventually.AssertAsync(async () =>
        {
            var r = await AdminApi.CtlAsync(cluster.Node1, "connect", "sessions");
            Assert.Equal(ExitCodes.Ok, r.ExitCode);
            var rows = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            Assert.Equal(ClusterFixture.Sessions, rows.Select(c => c[0]));
            Assert.All(rows, c => Assert.Equal("1", c[3])); // LINKS
            return r;
        });
        Assert.StartsWith("SESSION", table.Output);
        Assert.Contains(table.Output.Split('\n'), l => l.StartsWith("beta ") && l.Contains(cluster.Node2.Address));

        var json = await AdminApi.CtlAsync(cluster.Node2, "connect", "sessions", "--node", cluster.Node2.Address.Split('@')[1], "--json");
        Assert.Equal(ExitCodes.Ok, json.ExitCode);
        using var document = JsonDocument.Parse(json.Output);
        var names = document.RootElement.GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Contains("beta", names);

        var idle = await AdminApi.CtlAsync(cluster.Node2, "connect", "sessions", "--state", "idle");
        Assert.Equal(ExitCodes.Ok, idle.ExitCode);
        Assert.Contains("alpha", idle.Output);

        var usage = await AdminApi.CtlAsync(cluster.Node2, "connect", "sessions", "--state", "sleepy");
        Assert.Equal(ExitCodes.Usage, usage.ExitCode);
        Assert.Contains("sleepy", usage.Error);
    }

    [Fact]
    public async Task Connect_session_shows_its_link_and_region_stats_its_entities()
    {
        var session = await AdminApi.CtlAsync(cluster.Node2, "connect", "session", "beta");
        Assert.Equal(ExitCodes.Ok, session.ExitCode);
        Assert.StartsWith("session beta: idle;", session.Output);
        Assert.Contains(cluster.Node2.Address, session.Output);
        Assert.Contains("no open streams", session.Output);

        var missing = await AdminApi.CtlAsync(cluster.Node2, "connect", "session", "nobody");
        Assert.Equal(ExitCodes.Failed, missing.ExitCode);
        Assert.Contains("session 'nobody' is not known", missing.Error);

        var regions = await AdminApi.CtlAsync(cluster.Node1, "cluster-sharding", "regions");
        Assert.Equal(ExitCodes.Ok, regions.ExitCode);
        Assert.Matches(@"(?m)^session\s+\d+\s+3\s+2$", regions.Output);

        var stats = await AdminApi.CtlAsync(cluster.Node1, "cluster-sharding", "region-stats", "-r", "session");
        Assert.Equal(ExitCodes.Ok, stats.ExitCode);
        Assert.Matches(@"(?m)^REGION\s+NODE\s+SHARDS\s+ENTITIES$", stats.Output);
        Assert.Matches(@"(?m)^REGION\s+NODE\s+SHARD\s+ENTITIES$", stats.Output);
        Assert.Contains(cluster.Node1.Address, stats.Output);
        var unknown = await AdminApi.CtlAsync(cluster.Node1, "cluster-sharding", "region-stats", "-r", "nope");
        Assert.Equal(ExitCodes.Failed, unknown.ExitCode);
    }

    [Fact]
    public async Task Exit_codes_say_usage_unreachable_and_unauthorized_apart()
    {
        Assert.Equal(ExitCodes.Usage, (await AdminApi.CtlAsync(cluster.Node1, "cluster", "bogus")).ExitCode);
        Assert.Equal(ExitCodes.Usage, (await AdminApi.CtlAsync(cluster.Node1, "connect")).ExitCode);
        Assert.Equal(ExitCodes.Usage, (await AdminApi.CtlAsync(cluster.Node1, "cluster", "leave")).ExitCode); // -a is required

        var wrongToken = await AdminApi.CtlAsync($"127.0.0.1:{cluster.Node1.AdminPort}", "wrong", null, "cluster", "show");
        Assert.Equal(ExitCodes.Unauthorized, wrongToken.ExitCode);
        Assert.Contains("invalid admin token", wrongToken.Error);
        var noToken = await AdminApi.CtlAsync($"127.0.0.1:{cluster.Node1.AdminPort}", null, null, "cluster", "show");
        Assert.Equal(ExitCodes.Unauthorized, noToken.ExitCode);

        var closed = await AdminApi.CtlAsync($"127.0.0.1:{cluster.Targets.ClosedPort}", AdminApi.Token, null, "cluster", "show");
        Assert.Equal(ExitCodes.Unreachable, closed.ExitCode);
        Assert.Contains("cannot reach the admin API", closed.Error);

        var help = await AdminApi.CtlAsync(cluster.Node1, "connect", "ready", "--help");
        Assert.Equal(ExitCodes.Ok, help.ExitCode);
        Assert.Contains("holds no links and no streams", help.Output);
    }

    [Fact]
    public async Task Interactive_mode_runs_each_line_against_the_node()
    {
        var input = new StringReader("cluster leader\n\nconnect session alpha\nconnect nosuch\nexit\n");
        var result = await AdminApi.CtlAsync($"127.0.0.1:{cluster.Node1.AdminPort}", AdminApi.Token, input);
        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        Assert.Contains($"connectctl 127.0.0.1:{cluster.Node1.AdminPort}> ", result.Output);
        Assert.Contains("session alpha:", result.Output);
        Assert.Contains("(exit 2)", result.Output);
    }
}
