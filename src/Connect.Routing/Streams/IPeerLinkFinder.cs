using System.Collections.Immutable;
using Connect.Actors.Protocol;

namespace Connect.Routing.Streams;

/// <summary>
/// Asks the other nodes which usable links of a session they hold: the broker's last resort when the session entity
/// does not answer (its node crashed or froze and is not downed yet) and this node has no cached grant or local link.
/// </summary>
public interface IPeerLinkFinder
{
    /// <summary>
    /// The links of <paramref name="sessionId"/> that other reachable nodes report as usable (registered, not going
    /// away, not closed), leaving out <paramref name="exclude"/>; empty when none answers in time. Never throws for a
    /// node that does not answer.
    /// </summary>
    Task<IReadOnlyList<StreamGranted>> FindAsync(string sessionId, ImmutableHashSet<string> exclude, CancellationToken cancellationToken);
}
