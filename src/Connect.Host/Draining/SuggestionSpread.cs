using System.Text;

namespace Connect.Host.Draining;

/// <summary>
/// Where a draining node sends each of its agents first, so that a drain spreads them instead of piling every one onto
/// the first suggestion. The node's links are shared out by "water filling" over the peers' link counts: the peers with
/// the fewest links are filled up to a common level first, so the drained links even the cluster out. Each agent's first
/// suggestion is then drawn from those shares by a hash of its session id (weighted rendezvous hashing): deterministic
/// for a session, spread across sessions, with no state shared between link actors.
/// </summary>
/// <remarks>
/// A surge roll keeps its behaviour: the replacement has just joined with no links while every old node holds about as
/// many as the one draining, so the level is reached by the replacement alone and every agent goes to it (one move per
/// agent; an old node would send it away again at its own turn). A scale-down (the peers hold about as many links as each
/// other) splits the agents evenly instead of sending all 7,000 of a node to the newest peer.
/// </remarks>
public static class SuggestionSpread
{
    /// <summary>
    /// The share of <paramref name="toMove"/> links each peer should take so that the peers' link counts end as even as
    /// possible (each peer's count plus its share is the common level, or its count when it is above it). Shares sum to
    /// <paramref name="toMove"/>; empty when there is nothing to move or no peer.
    /// </summary>
    public static IReadOnlyDictionary<TPeer, double> Shares<TPeer>(IReadOnlyDictionary<TPeer, int> peerLinks, int toMove)
        where TPeer : notnull
    {
        if (toMove <= 0 || peerLinks.Count == 0)
        {
            return new Dictionary<TPeer, double>();
        }
        // Raise the level over the sorted counts until the links to move are used up.
        var counts = peerLinks.Values.Select(c => (double)Math.Max(0, c)).Order().ToArray();
        double left = toMove;
        var level = counts[0];
        for (var i = 0; i < counts.Length; i++)
        {
            var next = i + 1 < counts.Length ? counts[i + 1] : double.PositiveInfinity;
            var filled = i + 1; // peers at or below the level
            var room = (next - level) * filled;
            if (room >= left)
            {
                level += left / filled;
                break;
            }
            left -= room;
            level = next;
        }
        return peerLinks.ToDictionary(p => p.Key, p => Math.Max(0, level - Math.Max(0, p.Value)));
    }

    /// <summary>
    /// The peer a session's agent is sent to first: each peer is drawn with a probability proportional to its share, by a
    /// stable hash of <paramref name="sessionId"/> and the peer's <paramref name="key"/> (so the choice does not depend on
    /// the order of the peers, nor on the process). Null when no peer has a share.
    /// </summary>
    public static TPeer? Pick<TPeer>(string sessionId, IReadOnlyDictionary<TPeer, double> shares, Func<TPeer, string> key)
        where TPeer : class
    {
        TPeer? best = null;
        var bestScore = double.PositiveInfinity;
        foreach (var (peer, share) in shares)
        {
            if (share <= 0)
            {
                continue;
            }
            // Weighted rendezvous: the smallest -ln(u)/w wins, which is peer i with probability w_i / sum(w).
            var score = -Math.Log(Uniform(sessionId, key(peer))) / share;
            if (score < bestScore || (score == bestScore && string.CompareOrdinal(key(peer), key(best!)) < 0))
            {
                best = peer;
                bestScore = score;
            }
        }
        return best;
    }

    /// <summary>A number in (0, 1) from FNV-1a 64 over both strings: stable across processes and releases (string.GetHashCode is not).</summary>
    private static double Uniform(string sessionId, string peer)
    {
        const ulong offset = 14695981039346656037;
        const ulong prime = 1099511628211;
        var hash = offset;
        foreach (var b in Encoding.UTF8.GetBytes(sessionId + "\n" + peer))
        {
            hash = (hash ^ b) * prime;
        }
        // FNV's low bits mix poorly for similar inputs: finish with a 64-bit mixer (splitmix64's) before taking 53 bits.
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccd;
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53;
        hash ^= hash >> 33;
        return ((hash >> 11) + 0.5) / (1UL << 53);
    }
}
