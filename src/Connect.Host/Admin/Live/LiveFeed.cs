using System.Collections.Concurrent;
using System.Text.Json;
using Connect.Admin.Contracts;
using Connect.Host.Configuration;
using Microsoft.Extensions.Options;

namespace Connect.Host.Admin.Live;

/// <summary>
/// The live feed behind <c>GET /v1/events</c>: one sampler per node, fanned out to every watching client. While
/// anyone watches it samples the cluster every <see cref="AdminSettings.LiveInterval"/> (the same cluster-wide
/// views as <c>/v1/nodes</c> and one page of <c>/v1/sessions</c>, asked once for all clients instead of once per
/// polling browser), turns the difference with the previous sample into <see cref="LiveChange"/>s, and publishes
/// them with the new snapshot to each <see cref="LiveSubscriber"/>, whose memory is bounded (coalesced snapshots,
/// a capped queue of changes). Nobody watching: nothing is sampled. A new client wakes the sampler at once, gets
/// every member as a <c>member</c> change and the snapshot, then changes as they are seen.
/// </summary>
public sealed partial class LiveFeed(ClusterView view, IOptions<ConnectSettings> options, TimeProvider time, ILogger<LiveFeed> logger) : BackgroundService
{
    /// <summary>Sessions sampled per tick: the first page by name, as the operations page lists them.</summary>
    public const int SessionsSampled = 200;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ConcurrentDictionary<LiveSubscriber, bool> _subscribers = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private LiveSnapshot? _last;

    public int SubscriberCount => _subscribers.Count;

    /// <summary>Registers a client; it is introduced (members, snapshot) at the next sample, which starts now.</summary>
    public LiveSubscriber Subscribe(string? session)
    {
        var subscriber = new LiveSubscriber(session);
        _subscribers[subscriber] = false;
        Wake();
        return subscriber;
    }

    public void Unsubscribe(LiveSubscriber subscriber) => _subscribers.TryRemove(subscriber, out _);

    private void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already awake.
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.Admin.LiveInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_subscribers.IsEmpty)
                {
                    _last = null; // the next watcher starts from a fresh sample, not one from long ago
                    await _wake.WaitAsync(stoppingToken).ConfigureAwait(false);
                    continue;
                }
                await SampleAsync(stoppingToken).ConfigureAwait(false);
                // Until the next tick, or sooner when a new client arrives.
                using var nap = new CancellationTokenSource(interval, time);
                using var either = CancellationTokenSource.CreateLinkedTokenSource(nap.Token, stoppingToken);
                try
                {
                    await _wake.WaitAsync(either.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    // The tick is due.
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The cluster did not answer (starting, leaving): say so once per tick and try again next time.
                Log.SampleFailed(logger, e.Message);
                await Task.Delay(interval, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        var nodes = await view.NodesAsync(cancellationToken).ConfigureAwait(false);
        var sessions = await view.SessionsAsync(null, null, null, SessionsSampled, cancellationToken).ConfigureAwait(false);
        var at = time.GetUtcNow();
        var snapshot = new LiveSnapshot(at, nodes, sessions);
        var changes = _last is null ? [] : LiveChanges.Nodes(_last.Nodes, nodes, at).Concat(LiveChanges.Sessions(_last.Sessions, sessions, at)).ToList();
        _last = snapshot;

        var snapshotEvent = Event(LiveEventTypes.Snapshot, snapshot);
        var changeEvents = changes.Select(c => Event(LiveEventTypes.Change, c)).ToList();
        List<LiveEvent>? introduction = null;
        foreach (var (subscriber, introduced) in _subscribers)
        {
            if (!introduced)
            {
                introduction ??= LiveChanges.Nodes(null, nodes, at).Select(c => Event(LiveEventTypes.Change, c)).ToList();
                introduction.ForEach(subscriber.Publish);
                _subscribers.TryUpdate(subscriber, true, false);
            }
            else
            {
                changeEvents.ForEach(subscriber.Publish);
            }
            subscriber.Publish(snapshotEvent);
        }

        foreach (var watched in _subscribers.Keys.Where(s => s.Session is not null).GroupBy(s => s.Session!, StringComparer.Ordinal))
        {
            var sessionEvent = Event(LiveEventTypes.Session, await WatchedAsync(watched.Key, cancellationToken).ConfigureAwait(false));
            foreach (var subscriber in watched)
            {
                subscriber.Publish(sessionEvent);
            }
        }
    }

    private async Task<LiveSession> WatchedAsync(string name, CancellationToken cancellationToken)
    {
        var detail = await view.SessionAsync(name, cancellationToken).ConfigureAwait(false);
        var requests = await view.RequestsAsync(name, cancellationToken).ConfigureAwait(false);
        return new LiveSession(time.GetUtcNow(), name, detail, requests.Requests, [.. detail?.Errors ?? [], .. requests.Errors]);
    }

    private static LiveEvent Event<T>(string type, T value) => new(type, JsonSerializer.Serialize(value, Json));

    private static partial class Log
    {
        [LoggerMessage(EventId = 4301, Level = LogLevel.Debug, Message = "live feed: the cluster sample failed: {Reason}")]
        public static partial void SampleFailed(ILogger logger, string reason);
    }
}
