using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Client;

/// <summary>
/// The agent's graceful stop, as a node drains: GOAWAY on every link (no new streams either way), wait for the open
/// streams to finish within the grace, then close each link with 1000 so the node sees a clean goodbye, not 1006.
/// </summary>
internal static class AgentDrain
{
    public static async Task RunAsync(IReadOnlyList<ConnectAgent.AgentLink> links, TimeSpan grace, Action<string> log)
    {
        if (links.Count == 0)
        {
            return;
        }
        var open = links.Sum(l => l.Mux.ActiveStreams);
        log($"stopping: no new streams; waiting for {open} open streams (up to {grace.TotalSeconds:0} s)");
        foreach (var link in links)
        {
            link.Mux.GoAway(GoAwayCode.Shutdown, "agent stopping", []);
        }
        using var deadline = new CancellationTokenSource(grace);
        await Task.WhenAll(links.Select(l => WaitIdleAsync(l.Mux, deadline.Token))).ConfigureAwait(false);
        var left = links.Sum(l => l.Mux.ActiveStreams);
        if (left > 0)
        {
            log($"grace over: closing {left} streams still open");
        }
        await Task.WhenAll(links.Select(l => l.Mux.CloseAsync(CloseCodes.Normal, "agent stopped"))).ConfigureAwait(false);
        log("stopped: every link closed");
    }

    private static async Task WaitIdleAsync(TunnelMux mux, CancellationToken cancellationToken)
    {
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(TunnelMux m)
        {
            if (m.ActiveStreams == 0 || m.IsClosed)
            {
                idle.TrySetResult();
            }
        }
        mux.StreamsChanged += Check;
        try
        {
            Check(mux);
            await idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            mux.StreamsChanged -= Check;
        }
    }
}
