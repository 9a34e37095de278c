namespace Connect.Client;

/// <summary>Prints what the agent is doing (links, nodes, streams, bytes) every interval, only when it changed.</summary>
internal static class StatusPrinter
{
    public static async Task RunAsync(Func<IReadOnlyList<ConnectAgent.AgentLink>> links, TimeSpan interval, Action<string> log, CancellationToken stop)
    {
        var last = string.Empty;
        try
        {
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var line = Describe(links());
                if (line != last)
                {
                    log(line);
                    last = line;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public static string Describe(IReadOnlyList<ConnectAgent.AgentLink> links)
    {
        var line = string.Join(" | ", links.Select(l =>
            $"link #{l.Number} {l.Node}{(l.Mux.IsGoingAway ? " (going away)" : "")}: {l.Mux.ActiveStreams} streams open, {l.Mux.StreamsOpened} served, in {Bytes(l.Mux.BytesIn)}, out {Bytes(l.Mux.BytesOut)}"));
        return line.Length == 0 ? "no link connected" : line;
    }

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / 1048576.0:0.0} MiB",
        _ => $"{bytes / 1073741824.0:0.00} GiB",
    };
}
