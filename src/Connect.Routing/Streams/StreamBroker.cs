using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Routing.Links;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging;

namespace Connect.Routing.Streams;

/// <summary>Why the broker could not produce a stream.</summary>
public enum BrokerFailure
{
    /// <summary>The session has no connected agent (within the hold time).</summary>
    NoTunnel,
    /// <summary>The session's stream limit is reached.</summary>
    TooManyStreams,
    /// <summary>The agent refused the OPEN (allow-list, target refused, DNS...); see <see cref="StreamBrokerException.OpenError"/>.</summary>
    AgentRefused,
    /// <summary>The session entity did not answer in time (cluster trouble, hand-off that did not finish).</summary>
    Timeout,
}

/// <summary>A stream could not be opened; <see cref="Exception.Message"/> says why in words for the proxy's client.</summary>
public sealed class StreamBrokerException(BrokerFailure failure, string message, OpenErrorCode? openError = null) : Exception(message)
{
    public BrokerFailure Failure { get; } = failure;

    public OpenErrorCode? OpenError { get; } = openError;
}

/// <summary>Opens a stream on a link that lives on another node (the node-to-node data channel).</summary>
public interface IRemoteStreamOpener
{
    /// <summary>Opens a stream to <paramref name="target"/> on link <paramref name="linkId"/>, which lives on the node whose channel listens at <paramref name="dataEndpoint"/>.</summary>
    Task<MuxStream> OpenAsync(string dataEndpoint, string linkId, string target, CancellationToken cancellationToken);
}

/// <summary>
/// The data path's entry: asks the session entity (through the shard region) which link takes a new stream,
/// then opens it there, in-process when the link is on this node or over the node channel otherwise.
/// A link that turns out to be going away or gone is excluded and the entity is asked again, so requests
/// that race a drain or a reconnect still succeed.
/// <para>
/// With a <see cref="GrantCache"/>, an unreachable entity costs latency, not a failure: a stream whose session has
/// a healthy link on this node (learnt from an earlier grant) opens there without asking the entity at all, and
/// when the entity does not answer within <see cref="FallbackAfter"/> the newest cached healthy link (local or
/// remote) is used. The entity hears of those streams from the link's load reports.
/// </para>
/// <para>
/// With an <see cref="IPeerLinkFinder"/> as well, a request that finds no such link asks the other nodes which usable
/// links of the session they hold (an entry node that never served the session, or whose cached link died with the
/// entity's node), and uses one of those, remembered in the cache for the next requests.
/// </para>
/// </summary>
public sealed class StreamBroker(IActorRef region, LinkRegistry links, string node, IRemoteStreamOpener? remote, TimeSpan askTimeout, ILogger<StreamBroker> logger, GrantCache? cache = null, TimeProvider? time = null, IPeerLinkFinder? peers = null)
{
    private const int MaxAttempts = 8;

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>How often a request still waiting for its entity asks the other nodes again for a usable link (one lookup in flight at a time).</summary>
    public TimeSpan PeerLookupInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Links found on other nodes and used while the entity was silent, for tests and the measurement in docs/ARCHITECTURE.md.</summary>
    public long PeerFallbacks => Interlocked.Read(ref _peerFallbacks);

    private long _peerFallbacks;

    /// <summary>How long to wait for the entity before using a cached healthy link instead (only with a <see cref="GrantCache"/>).</summary>
    public TimeSpan FallbackAfter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Asks of the entity this broker has sent (first copies only), for tests and the measurement in docs/ARCHITECTURE.md.</summary>
    public long EntityAsks => Interlocked.Read(ref _entityAsks);

    private long _entityAsks;

    public async Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken)
    {
        var exclude = ImmutableHashSet<string>.Empty;
        if (cache is not null)
        {
            var (stream, tried) = await TryCachedLocalLinkAsync(sessionId, target, cancellationToken).ConfigureAwait(false);
            if (stream is not null)
            {
                return stream;
            }
            exclude = tried;
        }
        for (var attempt = 1; ; attempt++)
        {
            // One id per attempt, the same on every copy AskEntityAsync re-sends: the entity holds, counts and grants it once.
            var request = new OpenStream(sessionId, target, node, exclude, Guid.NewGuid().ToString("N"));
            var reply = await AskEntityAsync(request, cancellationToken).ConfigureAwait(false);
            var fromCache = reply is CachedGrant;
            if (reply is CachedGrant cached)
            {
                reply = cached.Grant;
            }

            if (reply is StreamRefused refused)
            {
                throw new StreamBrokerException(refused.Reason == StreamRefusal.TooManyStreams ? BrokerFailure.TooManyStreams : BrokerFailure.NoTunnel, refused.Message);
            }
            if (reply is not StreamGranted granted)
            {
                throw new InvalidOperationException($"unexpected reply {reply.GetType().Name} to OpenStream");
            }
            if (!fromCache)
            {
                cache?.Remember(granted);
            }

            try
            {
                return await OpenOnLinkAsync(granted, target, cancellationToken).ConfigureAwait(false);
            }
            catch (StreamOpenException e) when (e.Code is OpenErrorCode.GoingAway or OpenErrorCode.TooManyStreams && attempt < MaxAttempts)
            {
                // The link started draining or filled up between the grant and the OPEN: ask for another.
                logger.LogDebug("session {SessionId}: link {LinkId} could not take a stream ({Code}); asking again", sessionId, granted.LinkId, e.Code);
                cache?.Forget(sessionId, granted.LinkId);
                exclude = exclude.Add(granted.LinkId);
            }
            catch (Exception e) when (fromCache && attempt < MaxAttempts && !cancellationToken.IsCancellationRequested)
            {
                // A cached remote link whose node is gone (channel refused, reset, or torn down with the open pending,
                // which fails the open itself): forget it and ask again. The entity has had time to come back by then,
                // and it only names live links; a real refusal by the agent costs one more open at worst.
                logger.LogDebug(e, "session {SessionId}: cached link {LinkId} on {LinkNode} failed; trying another", sessionId, granted.LinkId, granted.LinkNode);
                cache?.Forget(sessionId, granted.LinkId);
                exclude = exclude.Add(granted.LinkId);
            }
            catch (StreamOpenException e)
            {
                throw new StreamBrokerException(BrokerFailure.AgentRefused, e.Reason, e.Code);
            }
            catch (LinkGoneException)
            {
                cache?.Forget(sessionId, granted.LinkId);
                if (attempt >= MaxAttempts)
                {
                    // Never let the private marker escape: the edge only turns StreamBrokerException into an answer.
                    throw new StreamBrokerException(BrokerFailure.NoTunnel, $"session '{sessionId}' has no link that could take the stream ({MaxAttempts} grants named links that are gone; last {granted.LinkId} on {granted.LinkNode})");
                }
                exclude = exclude.Add(granted.LinkId);
            }
        }
    }

    private sealed class LinkGoneException : Exception;

    /// <summary>A grant taken from the <see cref="GrantCache"/> because the entity did not answer in time.</summary>
    private sealed record CachedGrant(StreamGranted Grant);

    /// <summary>
    /// Asks the entity, and asks again every <see cref="ResendInterval"/> until <c>askTimeout</c>: a request sent
    /// while its shard's node is crashing is lost until the node is downed and the shard re-allocated, and a
    /// re-sent one then reaches the new entity. The first answer wins; the others are dropped. Every copy carries
    /// the request's id, so an entity that got several copies treats them as one request. With a cache, after
    /// <see cref="FallbackAfter"/> without an answer the newest cached healthy link is used instead.
    /// </summary>
    private async Task<object> AskEntityAsync(OpenStream request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _entityAsks);
        var started = _time.GetTimestamp();
        var outstanding = new List<Task<object>>();
        var nextResend = TimeSpan.Zero;
        var fallbackPending = cache is not null;
        var nextFallback = FallbackAfter;
        // The other nodes' answer, asked once the cache and the local links had nothing; never awaited on its own,
        // so the entity's answer (or its timeout) is taken whenever it comes first.
        Task<IReadOnlyList<StreamGranted>>? peerLookup = null;
        var nextPeerLookup = TimeSpan.Zero;
        while (true)
        {
            if (peerLookup is { IsCompleted: true })
            {
                var found = PeerAnswer(peerLookup, request);
                peerLookup = null;
                if (found is not null)
                {
                    cache!.Remember(found);
                    Interlocked.Increment(ref _peerFallbacks);
                    logger.LogInformation("session {SessionId}: the entity did not answer within {FallbackSeconds} s and this node had no healthy link cached; using link {LinkId} on {LinkNode}, found by asking the other nodes", request.SessionId, FallbackAfter.TotalSeconds, found.LinkId, found.LinkNode);
                    return new CachedGrant(found);
                }
            }
            var elapsed = _time.GetElapsedTime(started);
            var remaining = askTimeout - elapsed;
            if (elapsed >= nextResend && remaining > TimeSpan.Zero)
            {
                outstanding.Add(region.Ask<object>(request, remaining, cancellationToken));
                nextResend = elapsed + ResendInterval;
            }
            if (fallbackPending && elapsed >= nextFallback)
            {
                // Checked again every FallbackRecheck, not once: a link may attach here, and a frozen entity may stay
                // silent past the cache's expiry, while the request waits.
                nextFallback = elapsed + FallbackRecheck;
                var cached = FallbackLink(request);
                if (cached is not null)
                {
                    logger.LogInformation("session {SessionId}: the entity did not answer within {FallbackSeconds} s; using cached healthy link {LinkId} on {LinkNode}", request.SessionId, FallbackAfter.TotalSeconds, cached.LinkId, cached.LinkNode);
                    return new CachedGrant(cached);
                }
                if (peers is not null && peerLookup is null && elapsed >= nextPeerLookup)
                {
                    peerLookup = peers.FindAsync(request.SessionId, request.ExcludeLinks, cancellationToken);
                    nextPeerLookup = elapsed + PeerLookupInterval;
                }
            }
            if (outstanding.Count == 0)
            {
                throw new StreamBrokerException(BrokerFailure.Timeout, $"session '{request.SessionId}' did not answer within {askTimeout.TotalSeconds:0} s");
            }
            var wakeAt = fallbackPending && nextFallback < nextResend ? nextFallback : nextResend;
            var wait = remaining > TimeSpan.Zero ? Max(wakeAt - elapsed, TimeSpan.Zero) : Timeout.InfiniteTimeSpan;
            var timer = Task.Delay(wait, _time, cancellationToken);
            var waitingFor = peerLookup is null ? outstanding.Append(timer) : outstanding.Append(timer).Append(peerLookup);
            var done = await Task.WhenAny(waitingFor).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (done is Task<object> { IsCompletedSuccessfully: true } answered)
            {
                return await answered.ConfigureAwait(false);
            }
            outstanding.RemoveAll(t => t.IsCompleted);
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>The newest usable link a finished peer lookup reported (null when it found none or failed: the request keeps waiting for the entity).</summary>
    private StreamGranted? PeerAnswer(Task<IReadOnlyList<StreamGranted>> lookup, OpenStream request)
    {
        if (!lookup.IsCompletedSuccessfully)
        {
            logger.LogDebug(lookup.Exception, "session {SessionId}: asking the other nodes for a link failed", request.SessionId);
            return null;
        }
        return lookup.Result.FirstOrDefault(g => g.SessionId == request.SessionId && !request.ExcludeLinks.Contains(g.LinkId) && g.LinkNode != node);
    }

    /// <summary>
    /// The newest cached link that is still healthy as far as this node can tell (a local one must be registered and not
    /// going away); failing that, the newest link of the session on this node (registered, not going away, not excluded):
    /// a local link is healthy whether or not a grant named it before the cache entry expired.
    /// </summary>
    private StreamGranted? FallbackLink(OpenStream request) =>
        cache!.Healthy(request.SessionId, request.ExcludeLinks)
            .FirstOrDefault(g => g.LinkNode != node || (links.TryGet(g.LinkId, out var link) && !link.Mux.IsGoingAway))
        ?? links.All
            .Where(l => l.SessionId == request.SessionId && !l.Mux.IsGoingAway && !l.Mux.IsClosed && !request.ExcludeLinks.Contains(l.LinkId))
            .OrderByDescending(l => l.Since)
            .Select(l => new StreamGranted(l.SessionId, l.LinkId, l.Actor, node, ""))
            .FirstOrDefault();

    /// <summary>How often a request waiting for a silent entity looks again for a fallback link.</summary>
    private static readonly TimeSpan FallbackRecheck = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// A stream on a link of the session on this node, known from an earlier grant: no ask, no remoting. Returns the
    /// links it found unusable (forgotten, and excluded from the ask that follows).
    /// </summary>
    private async Task<(MuxStream? Stream, ImmutableHashSet<string> Tried)> TryCachedLocalLinkAsync(string sessionId, string target, CancellationToken cancellationToken)
    {
        var tried = ImmutableHashSet<string>.Empty;
        foreach (var grant in cache!.Healthy(sessionId, tried).Where(g => g.LinkNode == node))
        {
            if (!links.TryGet(grant.LinkId, out var link) || link.Mux.IsGoingAway)
            {
                cache.Forget(sessionId, grant.LinkId);
                tried = tried.Add(grant.LinkId);
                continue;
            }
            try
            {
                return (await link.Mux.OpenStreamAsync(target, cancellationToken).ConfigureAwait(false), tried);
            }
            catch (StreamOpenException e) when (e.Code is OpenErrorCode.GoingAway or OpenErrorCode.TooManyStreams)
            {
                cache.Forget(sessionId, grant.LinkId);
                tried = tried.Add(grant.LinkId);
            }
            catch (StreamOpenException e)
            {
                // The agent answered (allow-list, target refused...): the link is healthy, the answer is final.
                throw new StreamBrokerException(BrokerFailure.AgentRefused, e.Reason, e.Code);
            }
        }
        return (null, tried);
    }

    /// <summary>How long to wait for the entity before asking again (see <see cref="AskEntityAsync"/>).</summary>
    public TimeSpan ResendInterval { get; init; } = TimeSpan.FromSeconds(3);

    private async Task<MuxStream> OpenOnLinkAsync(StreamGranted granted, string target, CancellationToken cancellationToken)
    {
        if (granted.LinkNode == node)
        {
            if (!links.TryGet(granted.LinkId, out var link) || link.Mux.IsClosed)
            {
                throw new LinkGoneException();
            }
            return await link.Mux.OpenStreamAsync(target, cancellationToken).ConfigureAwait(false);
        }
        if (remote is null)
        {
            throw new StreamOpenException(OpenErrorCode.GoingAway, $"link {granted.LinkId} is on {granted.LinkNode} and this node has no node channel");
        }
        return await remote.OpenAsync(granted.DataEndpoint, granted.LinkId, target, cancellationToken).ConfigureAwait(false);
    }
}
