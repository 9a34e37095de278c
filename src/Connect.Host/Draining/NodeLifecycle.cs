using Akka.Actor;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Host.Configuration;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Options;

namespace Connect.Host.Tunnels;

/// <summary>
/// The node's drain: readiness turns 503, every link on the node gets GOAWAY (idle links close at once, busy
/// ones when their last stream ends), and streams still open at the deadline are reset and counted.
/// It runs when the host starts stopping (SIGTERM, Ctrl+C), before Akka leaves the cluster and before
/// Kestrel stops, so no step is cut short by a default timer.
/// </summary>
public sealed partial class NodeLifecycle(LinkRegistry links, IOptions<ConnectSettings> settings, TimeProvider time, ILogger<NodeLifecycle> logger) : IHostedLifecycleService
{
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _draining;
    private long _streamsResetAtDeadline;

    public bool IsDraining => Volatile.Read(ref _draining) == 1;

    /// <summary>Streams reset because they outlived a drain deadline.</summary>
    public long StreamsResetAtDeadline => Interlocked.Read(ref _streamsResetAtDeadline);

    /// <summary>Completes when a drain has finished (no links left, or the deadline passed).</summary>
    public Task Drained => _drained.Task;

    /// <summary>Tunnel URLs of other nodes, suggested to agents in GOAWAY.</summary>
    public IReadOnlyList<string> SuggestedServers() => [];

    /// <summary>Drains the node; safe to call more than once (later calls wait for the first).</summary>
    public async Task DrainAsync(string reason, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _draining, 1) == 1)
        {
            await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        var deadline = settings.Value.Drain.Deadline;
        var held = links.All;
        Log.DrainStarted(logger, reason, held.Count, links.ActiveStreams, deadline.TotalSeconds);
        foreach (var link in held)
        {
            link.Actor.Tell(new GoAwayLink(GoAwayCode.Draining, reason));
        }

        using var deadlineCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadlineCts.CancelAfter(deadline);
        try
        {
            while (links.Count > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), time, deadlineCts.Token).ConfigureAwait(false);
            }
            Log.DrainFinished(logger);
        }
        catch (OperationCanceledException)
        {
            foreach (var link in links.All)
            {
                foreach (var stream in link.Mux.Streams)
                {
                    Interlocked.Increment(ref _streamsResetAtDeadline);
                    Log.StreamResetAtDeadline(logger, link.SessionId, link.LinkId, stream.Id, stream.Target, deadline.TotalSeconds);
                    stream.Reset(ResetCode.DrainDeadline, $"node drain deadline of {deadline.TotalSeconds:0} s passed");
                }
                _ = link.Mux.CloseAsync(CloseCodes.GoingAway, "drain deadline passed");
            }
        }
        finally
        {
            _drained.TrySetResult();
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs before any hosted service stops: drain first, then Akka leaves, then Kestrel stops.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => DrainAsync("node shutting down", cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "drain started ({Reason}): {Links} links, {Streams} streams; deadline {DeadlineSeconds} s")]
        public static partial void DrainStarted(ILogger logger, string reason, int links, int streams, double deadlineSeconds);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "drain finished: no links left on this node")]
        public static partial void DrainFinished(ILogger logger);

        [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "session {SessionId}: stream {StreamId} to {Target} on link {LinkId} reset at the drain deadline ({DeadlineSeconds} s)")]
        public static partial void StreamResetAtDeadline(ILogger logger, string sessionId, string linkId, uint streamId, string target, double deadlineSeconds);
    }
}
