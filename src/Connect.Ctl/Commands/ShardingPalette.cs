using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Connect.Admin.Contracts;

namespace Connect.Ctl.Commands;

/// <summary>pbm's <c>cluster-sharding</c> palette: regions and where their shards and entities are.</summary>
internal static class ShardingPalette
{
    public static Command Create(CtlContext ctl)
    {
        var regionType = new Option<string?>("--region", "-r") { Description = "Only this region type (e.g. session)" };
        return new Command("cluster-sharding", "Cluster sharding: regions, region-stats")
        {
            ctl.Leaf("regions", "Every shard region type with its shard and entity totals", async (p, c, ct) =>
            {
                var (view, raw) = await c.GetAsync<ShardingView>("/v1/sharding", ct).ConfigureAwait(false);
                if (ctl.Json(p))
                {
                    return ctl.Print(raw);
                }
                Table.Write(ctl.Output, ["REGION", "SHARDS", "ENTITIES", "NODES"],
                    view.Regions.Select(r => (IReadOnlyList<string>)[r.TypeName, r.Shards.ToString(CultureInfo.InvariantCulture), r.Entities.ToString(CultureInfo.InvariantCulture), r.Nodes.Count.ToString(CultureInfo.InvariantCulture)]));
                ctl.WriteErrors(view.Regions.Where(r => r.Error is not null).Select(r => $"{r.TypeName}: {r.Error}"));
                return ExitCodes.Ok;
            }, ctl.JsonOption),
            ctl.Leaf("region-stats", "Shards and entities per node, then entities per shard", async (p, c, ct) =>
            {
                var (view, raw) = await c.GetAsync<ShardingView>("/v1/sharding", ct).ConfigureAwait(false);
                var wanted = p.GetValue(regionType);
                var regions = view.Regions.Where(r => wanted is null || r.TypeName == wanted).ToList();
                if (wanted is not null && regions.Count == 0)
                {
                    throw new CtlException(ExitCodes.Failed, $"no shard region '{wanted}' (known: {string.Join(", ", view.Regions.Select(r => r.TypeName))})");
                }
                if (ctl.Json(p))
                {
                    await ctl.Output.WriteLineAsync(JsonSerializer.Serialize(new ShardingView(regions), new JsonSerializerOptions(AdminClient.Json) { WriteIndented = true })).ConfigureAwait(false);
                    return ExitCodes.Ok;
                }
                Table.Write(ctl.Output, ["REGION", "NODE", "SHARDS", "ENTITIES"],
                    regions.SelectMany(r => r.Nodes.Select(n => (IReadOnlyList<string>)[r.TypeName, n.Address, n.Shards.ToString(CultureInfo.InvariantCulture), n.Entities.ToString(CultureInfo.InvariantCulture)])));
                await ctl.Output.WriteLineAsync().ConfigureAwait(false);
                Table.Write(ctl.Output, ["REGION", "NODE", "SHARD", "ENTITIES"],
                    regions.SelectMany(r => r.Nodes.SelectMany(n => n.EntitiesPerShard.Select(s => (IReadOnlyList<string>)[r.TypeName, n.Address, s.Key, s.Value.ToString(CultureInfo.InvariantCulture)]))));
                ctl.WriteErrors(regions.SelectMany(r => r.FailedShards.Select(s => $"{r.TypeName}: shard {s} did not answer")));
                return ExitCodes.Ok;
            }, regionType, ctl.JsonOption),
        };
    }
}
