using System.Buffers.Text;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Protocol;
using Connect.Host.Configuration;
using Connect.Host.Draining;
using Connect.Proxy;
using Connect.Routing.Links;
using Connect.Tunnel.Frames;
using Microsoft.Extensions.Options;

namespace Connect.Host.Draining;

/// <summary>
/// The node's drain, the lesson the product exists for: a deploy moves every session off a node without
/// cutting a stream. Started by SIGTERM (host stopping), by this node starting to leave the cluster (a
/// <c>cluster leave</c> from any node), or by the admin API; the steps:
/// <list type="number">
/// <item>readiness turns 503 and the tunnel endpoint refuses new agents;</item>
/// <item>every link gets GOAWAY with the other nodes' tunnel URLs: idle links close at once, busy ones when
/// their last stream ends, and the agents open their new links elsewhere at once (overlap, no gap);</item>
/// <item>the proxy port keeps accepting and forwarding (to the session's links on other nodes), answering with
/// <c>Connection: close</c>, until the links are drained and at least <see cref="DrainSettings.ProxyGrace"/> has
/// passed (the time load balancers need to see readiness fail); then the proxy and tunnel listening sockets close, so
/// new connections are refused by the kernel (never accepted and then reset); accepted requests and tunnels finish;</item>
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

    public static string TunnelUrlRole(string url) => TunnelUrlRolePrefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(url));

    /// <summary>The tunnel URL a <see cref="TunnelUrlRole"/> carries, or null when the role is not valid base64url (a role from a foreign or broken node is ignored).</summary>
    public static string? FromTunnelUrlRole(string role)
    {
        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(role.AsSpan(TunnelUrlRolePrefix.Length)));
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

    /// <summary>Members found draining when this node last asked (see <see cref="RefreshSuggestionsAsync"/>).</summary>
    private volatile IReadOnlySet<Address> _knownDraining = new HashSet<Address>();

    /// <summary>Members that said they are not draining when this node last asked; suggested first.</summary>
    private volatile IReadOnlySet<Address> _knownReady = new HashSet<Address>();

    /// <summary>
    /// The share of this node's links each peer should take (by address), from the peers' link counts at the last refresh
    /// (<see cref="SuggestionSpread.Shares{TPeer}"/>): who each agent is sent to first. Empty before a refresh.
    /// </summary>
    private volatile IReadOnlyDictionary<Address, double> _shares = new Dictionary<Address, double>();

    /// <summary>How long a drain waits for the other members to say whether they drain too.</summary>
    private static readonly TimeSpan PeerAskTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Tunnel URLs suggested to agents in GOAWAY: the other members that are Up, reachable and not known to be draining
    /// (a blue/green switch drains every old node at once; suggesting another old node sends the agent to a node that
    /// refuses it). Those that said they are not draining come first, and among them the newest member first: in a
    /// rolling restart the newest node is the replacement that just joined and the oldest is the next to drain, so an
    /// agent sent to the oldest would move again one step later (three moves per agent in a three-node roll instead of
    /// one). Called synchronously by link actors, so it reads what the last refresh learnt.
    /// </summary>
    public IReadOnlyList<string> SuggestedServers() => Candidates().Select(c => c.Url).ToList();

    /// <summary>
    /// The suggestions for one session's agent: <see cref="SuggestedServers()"/>, with the peer this session is sent to
    /// first moved to the front. That peer is drawn from the shares the last refresh computed from the peers' link counts
    /// (<see cref="SuggestionSpread"/>), by a hash of the session id: a scale-down spreads the drained agents over the
    /// peers by their room, while a surge roll (a replacement with no links, old nodes as full as this one) still sends
    /// every agent to the replacement. Without counts (no refresh, no peer answered) the order is the plain one.
    /// </summary>
    public IReadOnlyList<string> SuggestedServers(string sessionId)
    {
        var candidates = Candidates();
        var shares = _shares;
        var weighted = candidates.Where(c => shares.ContainsKey(c.Address)).DistinctBy(c => c.Address).ToDictionary(c => c, c => shares[c.Address]);
        var first = candidates.Count > 1 ? SuggestionSpread.Pick(sessionId, weighted, c => c.Address.ToString()) : null;
        return first is null
            ? candidates.Select(c => c.Url).ToList()
            : [first.Url, .. candidates.Where(c => c != first).Select(c => c.Url)];
    }

    /// <summary>A member that may be suggested, with its tunnel URL.</summary>
    private sealed record Candidate(Address Address, string Url);

    /// <summary>The members that may be suggested, in the plain order (answered "not draining" first, then newest first).</summary>
    private List<Candidate> Candidates()
    {
        var system = services.GetService<ActorSystem>();
        if (system is null)
        {
            return [];
        }
        var cluster = Akka.Cluster.Cluster.Get(system);
        var draining = _knownDraining;
        var ready = _knownReady;
        var unreachable = cluster.State.Unreachable;
        return cluster.State.Members
            .Where(m => m.Status == MemberStatus.Up && !m.Address.Equals(cluster.SelfAddress) && !draining.Contains(m.Address) && !unreachable.Contains(m))
            .OrderBy(m => ready.Contains(m.Address) ? 0 : 1)
            .ThenByDescending(m => m, Member.AgeOrdering)
            .SelectMany(m => m.Roles
                .Where(r => r.StartsWith(TunnelUrlRolePrefix, StringComparison.Ordinal))
                .Select(FromTunnelUrlRole)
                .OfType<string>()
                .Select(url => new Candidate(m.Address, url)))
            .ToList();
    }

    /// <summary>
    /// Asks every other Up member whether it drains (the same <see cref="GetNodeSummary"/> the admin API's cluster view
    /// uses: counts only, one small reply however many links the peer holds; the full <see cref="GetNodeInfo"/> list of a
    /// peer past ~1,000 links is over the remoting frame and was dropped, so a busy draining peer went unrecognised and
    /// was suggested, and every drain waited out the ask first) and remembers the answers: <see cref="SuggestedServers"/> leaves out the draining ones and names the ones
    /// that said they are not draining first; one that did not answer in time (a busy node) comes last, not never,
    /// because an empty suggestion list would send every agent back to its configured servers.
    /// Each node marks itself draining before it asks, so of two nodes draining at once at least the later one learns
    /// of the earlier; an agent sent to a node that began draining a moment later gets 503 there and tries its next
    /// suggestion.
    /// </summary>
    public async Task RefreshSuggestionsAsync(CancellationToken cancellationToken)
    {
        var system = services.GetService<ActorSystem>();
        if (system is null)
        {
            return;
        }
        var cluster = Akka.Cluster.Cluster.Get(system);
        var peers = cluster.State.Members.Where(m => m.Status == MemberStatus.Up && !m.Address.Equals(cluster.SelfAddress)).ToList();
        var answers = await Task.WhenAll(peers.Select(async member =>
        {
            try
            {
                var info = await system.ActorSelection(member.Address + Connect.Host.Admin.NodeInfoActor.Path)
                    .Ask<NodeSummary>(GetNodeSummary.Instance, PeerAskTimeout, cancellationToken).ConfigureAwait(false);
                return (member.Address, Draining: (bool?)info.Draining, info.Links);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or OperationCanceledException or ActorNotFoundException)
            {
                return (member.Address, Draining: (bool?)null, Links: 0);
            }
        })).ConfigureAwait(false);
        _knownDraining = answers.Where(a => a.Draining == true).Select(a => a.Address).ToHashSet();
        _knownReady = answers.Where(a => a.Draining == false).Select(a => a.Address).ToHashSet();
        // Only peers that answered have a count; the links to share out are the ones this node holds now.
        _shares = SuggestionSpread.Shares(answers.Where(a => a.Draining == false).ToDictionary(a => a.Address, a => a.Links), links.Count);
    }

    /// <summary>
    /// Called by the tunnel endpoint after it registered a link: when a drain has begun, the link may have been upgraded
    /// after the drain read the registry (the endpoint checks <see cref="IsDraining"/> before the upgrade), so it gets
    /// GOAWAY here and wakes the drain when it closes. A link the drain did see gets a second GOAWAY, which is a no-op.
    /// </summary>
    public void AdoptIfDraining(TunnelLink link)
    {
        if (!IsDraining)
        {
            return;
        }
        link.Actor.Tell(new GoAwayLink(GoAwayCode.Draining, "node draining"));
        _ = link.Mux.Closed.ContinueWith(_ => _changed.Release(), TaskScheduler.Default);
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
        try
        {
            await RefreshSuggestionsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
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
        var listenersClosed = false;
        try
        {
            while (true)
            {
                if (!graceOver && time.GetElapsedTime(started) >= drain.ProxyGrace)
                {
                    graceOver = true;
                }
                if (graceOver && !listenersClosed && links.Count == 0)
                {
                    listenersClosed = true;
                    await CloseListenersAsync(time.GetElapsedTime(started)).ConfigureAwait(false);
                }
                if (listenersClosed && proxy.InFlight == 0)
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
                    // Grace timer: loop to check whether the listeners may close.
                }
            }
            Log.DrainFinished(logger, time.GetElapsedTime(started).TotalSeconds);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            if (!listenersClosed)
            {
                listenersClosed = true;
                await CloseListenersAsync(time.GetElapsedTime(started)).ConfigureAwait(false);
            }
            ResetWhatIsLeft(drain.Deadline);
        }
        finally
        {
            proxy.ActivityEnded -= Wake;
            if (!listenersClosed)
            {
                await CloseListenersAsync(time.GetElapsedTime(started)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Closes the proxy and tunnel listening sockets: from now on new connections are refused by the kernel, which a
    /// client or load balancer retries on another node; what was accepted goes on. The admin listener stays (the
    /// pipeline polls it to know when this node may be terminated).
    /// </summary>
    private async Task CloseListenersAsync(TimeSpan elapsed)
    {
        proxy.Close();
        var factory = services.GetService<ClosableListenerFactory>();
        var listeners = services.GetService<Listeners>();
        if (factory is not null && listeners is not null)
        {
            try
            {
                await factory.CloseAsync(listeners.ProxyPort).ConfigureAwait(false);
                await factory.CloseAsync(listeners.TunnelPort).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                logger.LogWarning(e, "closing the proxy and tunnel listeners failed");
            }
        }
        Log.ListenersClosed(logger, elapsed.TotalSeconds, settings.Value.Drain.ProxyGrace.TotalSeconds, proxy.InFlight);
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

        [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "links drained and proxy grace of {GraceSeconds} s over after {Seconds:0.00} s: proxy and tunnel listeners closed, new connections are refused; {InFlight} requests still in flight")]
        public static partial void ListenersClosed(ILogger logger, double seconds, double graceSeconds, int inFlight);
    }
}
