using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Protocol;
using Connect.Host.Admin;
using Connect.Routing.Streams;
using Microsoft.Extensions.Logging;

namespace Connect.Host.Tunnels;

/// <summary>
/// Asks every other member that is Up and reachable (an unreachable one cannot answer) which usable links of a session
/// it holds, through its <see cref="NodeInfoActor"/>, each with a short timeout: the stream broker's last resort while
/// the session entity's node is crashed or frozen and not yet downed (issue 13, issue 16's storm goal).
/// </summary>
public sealed partial class PeerLinkFinder(ActorSystem system, ILogger<PeerLinkFinder> logger) : IPeerLinkFinder
{
    /// <summary>Short: a node that does not answer in a second is most likely the one that is gone.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    public async Task<IReadOnlyList<StreamGranted>> FindAsync(string sessionId, ImmutableHashSet<string> exclude, CancellationToken cancellationToken)
    {
        var cluster = Cluster.Get(system);
        var state = cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var query = new FindSessionLinks(sessionId, exclude);
        var asks = state.Members
            .Where(m => m.Status == MemberStatus.Up && !unreachable.Contains(m.Address) && !m.Address.Equals(cluster.SelfAddress))
            .Select(async member =>
            {
                try
                {
                    var found = await system.ActorSelection(member.Address + NodeInfoActor.Path)
                        .Ask<SessionLinksFound>(query, Timeout, cancellationToken).ConfigureAwait(false);
                    return found.Links;
                }
                catch (Exception e)
                {
                    Log.NoAnswer(logger, sessionId, member.Address.ToString(), e.GetType().Name);
                    return ImmutableList<StreamGranted>.Empty;
                }
            })
            .ToList();
        var answers = await Task.WhenAll(asks).ConfigureAwait(false);
        return answers.SelectMany(links => links).ToList();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "session {SessionId}: {Member} did not say which links it holds ({Reason})")]
        public static partial void NoAnswer(ILogger logger, string sessionId, string member, string reason);
    }
}
