using System.Collections.Immutable;
using Akka.Cluster;

namespace Connect.Host.Health;

/// <summary>
/// Whether this node is on the side of a partition that the keep-majority split-brain resolver keeps. A node on the
/// other side (isolated, or starved of CPU until its peers stopped hearing it) will be downed, and until then its shard
/// region cannot reach the coordinator on the majority: requests it accepts wait and fail. Readiness turns 503 there,
/// so load balancers stop sending to it while the process is still alive.
/// </summary>
/// <remarks>
/// Not "the coordinator's node is unreachable": when that node crashes every other node would turn 503 at once,
/// although they keep serving every session whose shard home they know. The majority rule takes a node out only when
/// it is the one that loses.
/// </remarks>
public static class SurvivingSide
{
    /// <summary>
    /// Keep-majority over the members that count (Up or Leaving; joining members do not vote): more reachable than
    /// unreachable, or an even split whose lowest address is reachable (the resolver's tie-break).
    /// </summary>
    public static bool Keeps(IEnumerable<Member> members, IImmutableSet<Member> unreachable)
    {
        var counted = members.Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving).ToList();
        if (counted.Count == 0)
        {
            return true;
        }
        var lost = counted.Count(unreachable.Contains);
        var kept = counted.Count - lost;
        if (kept != lost)
        {
            return kept > lost;
        }
        var lowest = counted.OrderBy(m => m.Address, Member.AddressOrdering).First();
        return !unreachable.Contains(lowest);
    }
}
