using System.Collections.Concurrent;
using System.Collections.Immutable;
using Connect.Actors.Protocol;

namespace Connect.Routing.Streams;

/// <summary>
/// What this node learnt from the session entities' recent grants: which links of a session were healthy. The
/// broker uses it to open a stream on a local link without asking the entity, and to keep serving when the
/// entity does not answer (its node frozen or crashed and not yet downed). A link leaves the cache when an open
/// on it fails, when it goes away or closes (local links are checked at use), or <see cref="Expiry"/> after the
/// last grant that named it. The entity stays the authority: it hears of every stream from the link's load
/// reports, and every ask refreshes the cache.
/// </summary>
public sealed class GrantCache(TimeProvider time, TimeSpan expiry)
{
    /// <summary>Sessions kept before expired entries are swept on the next grant.</summary>
    private const int SweepAbove = 10_000;

    private readonly ConcurrentDictionary<string, ImmutableDictionary<string, Entry>> _sessions = new(StringComparer.Ordinal);

    private sealed record Entry(StreamGranted Grant, DateTimeOffset Expires);

    public TimeSpan Expiry => expiry;

    /// <summary>Remembers (or refreshes) the link a grant named.</summary>
    public void Remember(StreamGranted grant)
    {
        var expires = time.GetUtcNow() + expiry;
        _sessions.AddOrUpdate(
            grant.SessionId,
            _ => ImmutableDictionary<string, Entry>.Empty.SetItem(grant.LinkId, new Entry(grant, expires)),
            (_, links) => links.SetItem(grant.LinkId, new Entry(grant, expires)));
        if (_sessions.Count > SweepAbove)
        {
            Sweep();
        }
    }

    /// <summary>Forgets a link that failed, went away or closed.</summary>
    public void Forget(string sessionId, string linkId)
    {
        while (_sessions.TryGetValue(sessionId, out var links) && links.ContainsKey(linkId))
        {
            var rest = links.Remove(linkId);
            if (rest.IsEmpty ? _sessions.TryRemove(new KeyValuePair<string, ImmutableDictionary<string, Entry>>(sessionId, links)) : _sessions.TryUpdate(sessionId, rest, links))
            {
                return;
            }
        }
    }

    /// <summary>The session's unexpired cached grants, newest first, leaving out <paramref name="exclude"/>.</summary>
    public IReadOnlyList<StreamGranted> Healthy(string sessionId, ImmutableHashSet<string> exclude)
    {
        if (!_sessions.TryGetValue(sessionId, out var links))
        {
            return [];
        }
        var now = time.GetUtcNow();
        return links.Values
            .Where(e => e.Expires > now && !exclude.Contains(e.Grant.LinkId))
            .OrderByDescending(e => e.Expires)
            .Select(e => e.Grant)
            .ToList();
    }

    /// <summary>Sessions with at least one cached link (for tests and metrics).</summary>
    public int Count => _sessions.Count;

    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (session, links) in _sessions)
        {
            var alive = links.Where(p => p.Value.Expires > now).ToImmutableDictionary();
            if (alive.Count == links.Count)
            {
                continue;
            }
            if (alive.IsEmpty)
            {
                _sessions.TryRemove(new KeyValuePair<string, ImmutableDictionary<string, Entry>>(session, links));
            }
            else
            {
                _sessions.TryUpdate(session, alive, links);
            }
        }
    }
}
