using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Host.Configuration;
using Connect.Proxy;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Options;

namespace Connect.Host.Tunnels;

/// <summary>
/// The node's drain, the lesson the product exists for: a deploy moves every session off a node without
/// cutting a stream. Started by SIGTERM (host stopping), by this node starting to leave the cluster (a
/// <c>cluster leave</c> from any node), or by the admin API; the steps:
/// <list type="number">
/// <item>readiness turns 503 and the tunnel endpoint refuses new agents;</item>
/// <item>every link gets GOAWAY with the other nodes' tunnel URLs: idle links close at once, busy ones when
/// their last stream ends, and the agents open their new links elsewhere at once (overlap, no gap);</item>
/// <item>the proxy port keeps accepting for <see cref="DrainSettings.ProxyGrace"/>, answering with
/// <c>Connection: close</c>, then refuses new connections; accepted requests and tunnels finish;</item>
/// <item>at <see cref="DrainSettings.Deadline"/> what is still open is reset, counted and logged by session.</item>
/// </list>
/// Only then does Akka's coordinated shutdown leave the cluster and hand the entities off (its
/// service-requests-done phase waits for this drain), and only then does Kestrel stop.
/// </summary>
public sealed partial class NodeLifecycle(
    LinkRegistry links,
    ProxyDrain proxy,
    IOptions<ConnectSettings> settings,
    TimeProvider time,
    IServiceProvider services,
    ILogger<NodeLifecycle> logger) : IHostedLifecycleService
{
    /// <summary>Cluster role that carries a node's tunnel URL (base64url, as roles go into HOCON unquoted), so a draining node can suggest where agents go.</summary>
    public const string TunnelUrlRolePrefix = "tunnel-url-";

    public static string TunnelUrlRole(string url) => TunnelUrlRolePrefix + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(url)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string? FromTunnelUrlRole(string role)
    {
        var encoded = role[TunnelUrlRolePrefix.Length..].Replace('-', '+').Replace('_', '/');
        encoded = encoded.PadRight(encoded.Length + ((4 - (encoded.Length % 4)) % 4), '=');
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _changed = new(0);
    private int _draining;
    private long _streamsResetAtDeadline;
    private long _proxyAbortedAtDeadline;

    public bool IsDraining => Volatile.Read(ref _draining) == 1;

    /// <summary>True when draining and nothing is left: no link, no stream, no proxy request. The check a deploy pipeline runs.</summary>
    public bool IsReadyToTerminate => IsDraining && links.Count == 0 && proxy.InFlight == 0;

    /// <summary>Streams reset because they outlived a drain deadline.</summary>
    public long StreamsResetAtDeadline => Interlocked.Read(ref _streamsResetAtDeadline);

    /// <summary>Proxy requests and tunnels aborted because they outlived a drain deadline.</summary>
    public long ProxyRequestsAbortedAtDeadline => Interlocked.Read(ref _proxyAbortedAtDeadline);

    /// <summary>Completes when a drain has finished (nothing left, or the deadline passed).</summary>
    public Task Drained => _drained.Task;

    /// <summary>Tunnel URLs of the other Up members, suggested to agents in GOAWAY.</summary>
    public IReadOnlyList<string> SuggestedServers()
    {
        var system = services.GetService<ActorSystem>();
        if (system is null)
        {
            return [];
        }
        var cluster = Akka.Cluster.Cluster.Get(system);
        return cluster.State.Members
            .Where(m => m.Status == MemberStatus.Up && !m.Address.Equals(cluster.SelfAddress))
            .SelectMany(m => m.Roles)
            .Where(r => r.StartsWith(TunnelUrlRolePrefix, StringComparison.Ordinal))
            .Select(FromTunnelUrlRole)
            .OfType<string>()
            .ToList();
    }

    /// <summary>Drains the node; safe to call more than once (later calls wait for the first).</summary>
    public async Task DrainAsync(string reason, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _draining, 1) == 1)
        {
            await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        try
        {
            await RunDrainAsync(reason, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _drained.TrySetResult();
        }
    }

    private async Task RunDrainAsync(string reason, CancellationToken cancellationToken)
    {
        var drain = settings.Value.Drain;
        var started = time.GetTimestamp();
        proxy.StartDraining();
        var held = links.All;
        var suggested = SuggestedServers();
        Log.DrainStarted(logger, reason, held.Count, links.ActiveStreams, proxy.InFlight, drain.Deadline.TotalSeconds, suggested.Count == 0 ? "none (no other node to suggest; agents reconnect to their configured servers)" : string.Join(", ", suggested));
        foreach (var link in held)
        {
            link.Actor.Tell(new GoAwayLink(GoAwayCode.Draining, $"node draining: {reason}"));
        }

        void Wake() => _changed.Release();
        proxy.ActivityEnded += Wake;
        foreach (var link in held)
        {
            _ = link.Mux.Closed.ContinueWith(_ => Wake(), TaskScheduler.Default);
        }
        using var deadline = new CancellationTokenSource(drain.Deadline, time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var graceOver = false;
        try
        {
            while (true)
            {
                if (!graceOver && time.GetElapsedTime(started) >= drain.ProxyGrace)
                {
                    graceOver = true;
                    proxy.Close();
                    Log.ProxyClosed(logger, drain.ProxyGrace.TotalSeconds, proxy.InFlight);
                }
                if (graceOver && links.Count == 0 && proxy.InFlight == 0)
                {
                    break;
                }
                // Wake on a link closing or a proxy request ending; the grace needs a timed wake-up too.
                var untilGrace = graceOver ? Timeout.InfiniteTimeSpan : drain.ProxyGrace - time.GetElapsedTime(started);
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                if (untilGrace != Timeout.InfiniteTimeSpan)
                {
                    tick.CancelAfter(untilGrace > TimeSpan.Zero ? untilGrace : TimeSpan.Zero);
                }
                try
                {
                    await _changed.WaitAsync(tick.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    // Grace timer: loop to close the proxy port.
                }
            }
            Log.DrainFinished(logger, time.GetElapsedTime(started).TotalSeconds);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            ResetWhatIsLeft(drain.Deadline);
        }
        finally
        {
            proxy.ActivityEnded -= Wake;
            proxy.Close();
        }
    }

    private void ResetWhatIsLeft(TimeSpan deadline)
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
        foreach (var (session, description) in proxy.AbortAll())
        {
            Interlocked.Increment(ref _proxyAbortedAtDeadline);
            Log.ProxyAbortedAtDeadline(logger, session, description, deadline.TotalSeconds);
        }
    }

    private void LogFailure(Exception e) => logger.LogError(e, "drain failed");

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Watches for this node starting to leave the cluster (a leave issued from any node) to drain at once.</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var system = services.GetRequiredService<ActorSystem>();
        var self = this;
        system.ActorOf(Props.Create(() => new LeaveWatcher(self)), "connect-leave-watcher");
        return Task.CompletedTask;
    }

    /// <summary>Runs before any hosted service stops: drain first, then Akka leaves, then Kestrel stops.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => DrainAsync("node shutting down", cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Starts the drain when this node's member status turns Leaving (or later), however the leave was issued.</summary>
    private sealed class LeaveWatcher : ReceiveActor
    {
        public LeaveWatcher(NodeLifecycle lifecycle)
        {
            var cluster = Akka.Cluster.Cluster.Get(Context.System);
            Receive<ClusterEvent.MemberLeft>(left => left.Member.Address.Equals(cluster.SelfAddress), left => StartDrain(lifecycle));
            Receive<ClusterEvent.MemberExited>(exited => exited.Member.Address.Equals(cluster.SelfAddress), exited => StartDrain(lifecycle));
            Receive<ClusterEvent.IMemberEvent>(_ => { });
            Receive<ClusterEvent.CurrentClusterState>(_ => { });
        }

        private static void StartDrain(NodeLifecycle lifecycle) =>
            lifecycle.DrainAsync("this node is leaving the cluster", CancellationToken.None).ContinueWith(
                t => lifecycle.LogFailure(t.Exception!), TaskContinuationOptions.OnlyOnFaulted);

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "drain started ({Reason}): {Links} links, {Streams} streams, {ProxyInFlight} proxy requests; deadline {DeadlineSeconds} s; agents are sent to: {Suggested}")]
        public static partial void DrainStarted(ILogger logger, string reason, int links, int streams, int proxyInFlight, double deadlineSeconds, string suggested);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "drain finished after {Seconds:0.00} s: no links, streams or proxy requests left on this node")]
        public static partial void DrainFinished(ILogger logger, double seconds);

        [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "session {SessionId}: stream {StreamId} to {Target} on link {LinkId} reset at the drain deadline ({DeadlineSeconds} s)")]
        public static partial void StreamResetAtDeadline(ILogger logger, string sessionId, string linkId, uint streamId, string target, double deadlineSeconds);

        [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "session {SessionId}: proxy {Request} aborted at the drain deadline ({DeadlineSeconds} s)")]
        public static partial void ProxyAbortedAtDeadline(ILogger logger, string sessionId, string request, double deadlineSeconds);

        [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "proxy grace of {GraceSeconds} s over: the proxy port refuses new connections; {InFlight} requests still in flight")]
        public static partial void ProxyClosed(ILogger logger, double graceSeconds, int inFlight);
    }
}
