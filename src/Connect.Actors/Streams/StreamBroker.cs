using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Links;
using Connect.Actors.Protocol;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging;

namespace Connect.Actors.Streams;

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
/// </summary>
public sealed class StreamBroker(IActorRef region, LinkRegistry links, string node, IRemoteStreamOpener? remote, TimeSpan askTimeout, ILogger<StreamBroker> logger)
{
    private const int MaxAttempts = 8;

    public async Task<MuxStream> OpenAsync(string sessionId, string target, CancellationToken cancellationToken)
    {
        var exclude = ImmutableHashSet<string>.Empty;
        for (var attempt = 1; ; attempt++)
        {
            // One id per attempt, the same on every copy AskEntityAsync re-sends: the entity holds, counts and grants it once.
            var request = new OpenStream(sessionId, target, node, exclude, Guid.NewGuid().ToString("N"));
            var reply = await AskEntityAsync(request, cancellationToken).ConfigureAwait(false);

            if (reply is StreamRefused refused)
            {
                throw new StreamBrokerException(refused.Reason == StreamRefusal.TooManyStreams ? BrokerFailure.TooManyStreams : BrokerFailure.NoTunnel, refused.Message);
            }
            if (reply is not StreamGranted granted)
            {
                throw new InvalidOperationException($"unexpected reply {reply.GetType().Name} to OpenStream");
            }

            try
            {
                return await OpenOnLinkAsync(granted, target, cancellationToken).ConfigureAwait(false);
            }
            catch (StreamOpenException e) when (e.Code is OpenErrorCode.GoingAway or OpenErrorCode.TooManyStreams && attempt < MaxAttempts)
            {
                // The link started draining or filled up between the grant and the OPEN: ask for another.
                logger.LogDebug("session {SessionId}: link {LinkId} could not take a stream ({Code}); asking again", sessionId, granted.LinkId, e.Code);
                exclude = exclude.Add(granted.LinkId);
            }
            catch (StreamOpenException e)
            {
                throw new StreamBrokerException(BrokerFailure.AgentRefused, e.Reason, e.Code);
            }
            catch (LinkGoneException)
            {
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

    /// <summary>
    /// Asks the entity, and asks again every <see cref="ResendInterval"/> until <c>askTimeout</c>: a request sent
    /// while its shard's node is crashing is lost until the node is downed and the shard re-allocated, and a
    /// re-sent one then reaches the new entity. The first answer wins; the others are dropped. Every copy carries
    /// the request's id, so an entity that got several copies treats them as one request.
    /// </summary>
    private async Task<object> AskEntityAsync(OpenStream request, CancellationToken cancellationToken)
    {
        var started = Environment.TickCount64;
        var outstanding = new List<Task<object>>();
        while (true)
        {
            var remaining = askTimeout - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
            if (remaining > TimeSpan.Zero)
            {
                outstanding.Add(region.Ask<object>(request, remaining, cancellationToken));
            }
            if (outstanding.Count == 0)
            {
                throw new StreamBrokerException(BrokerFailure.Timeout, $"session '{request.SessionId}' did not answer within {askTimeout.TotalSeconds:0} s");
            }
            var resend = Task.Delay(remaining > ResendInterval ? ResendInterval : Timeout.InfiniteTimeSpan, cancellationToken);
            var done = await Task.WhenAny(outstanding.Append(resend)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (done is Task<object> { IsCompletedSuccessfully: true } answered)
            {
                return await answered.ConfigureAwait(false);
            }
            outstanding.RemoveAll(t => t.IsCompleted);
        }
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
