using System.Globalization;
using Akka.Actor;
using Akka.Cluster;

namespace Connect.Host.Configuration;

/// <summary>
/// Keeps a node whose session shard count differs from the cluster's out of it. Each node advertises its count in a
/// role (<c>shards-N</c>); a node that sees an older member with another count leaves at once and stops its host,
/// because the same session name would hash to different shards on the two nodes and could get two entities.
/// The older member stays: the cluster keeps the count it has. Akka.NET 1.5 has no join-time configuration check
/// (Akka's JoinConfigCompatChecker), so the roles carry it. Members without the role (older releases) are not judged.
/// </summary>
public sealed partial class ShardCountGuard : ReceiveActor
{
    public const string Name = "connect-shard-count-guard";

    public const string RolePrefix = "shards-";

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private bool _leaving;

    public ShardCountGuard(int shards, ILogger logger, Action stopHost)
    {
        Receive<ClusterEvent.IMemberEvent>(e => Check(e.Member, shards, logger, stopHost));
        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            foreach (var member in state.Members)
            {
                Check(member, shards, logger, stopHost);
            }
        });
    }

    /// <summary>The role that advertises a node's shard count.</summary>
    public static string Role(int shards) => RolePrefix + shards.ToString(CultureInfo.InvariantCulture);

    /// <summary>The shard count a member advertises, or null when it carries no such role.</summary>
    public static int? Advertised(Member member) =>
        member.Roles.Where(r => r.StartsWith(RolePrefix, StringComparison.Ordinal))
            .Select(r => int.TryParse(r.AsSpan(RolePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : (int?)null)
            .FirstOrDefault(n => n is not null);

    public static Props Props(int shards, ILogger logger, Action stopHost) =>
        Akka.Actor.Props.Create(() => new ShardCountGuard(shards, logger, stopHost));

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Check(Member member, int shards, ILogger logger, Action stopHost)
    {
        if (_leaving || member.Address.Equals(_cluster.SelfAddress) || member.Status is MemberStatus.Removed or MemberStatus.Down or MemberStatus.Exiting)
        {
            return;
        }
        var theirs = Advertised(member);
        if (theirs is null || theirs == shards)
        {
            return;
        }
        var self = _cluster.SelfMember;
        // The newcomer goes: a member not yet Up is younger than any Up member; between Up members, age decides.
        var selfIsYounger = self.Status != MemberStatus.Up || (member.Status == MemberStatus.Up && member.IsOlderThan(self));
        if (!selfIsYounger)
        {
            Log.YoungerMemberMismatch(logger, member.Address.ToString(), theirs.Value, shards);
            return;
        }
        _leaving = true;
        Log.LeavingOnMismatch(logger, shards, member.Address.ToString(), theirs.Value);
        _cluster.RegisterOnMemberRemoved(stopHost);
        _cluster.Leave(_cluster.SelfAddress);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4101, Level = LogLevel.Critical, Message = "this node has {Mine} session shards but cluster member {Member} has {Theirs}: every node must have the same Connect:Sessions:ShardCount (else one session could get two entities); leaving the cluster and stopping")]
        public static partial void LeavingOnMismatch(ILogger logger, int mine, string member, int theirs);

        [LoggerMessage(EventId = 4102, Level = LogLevel.Error, Message = "cluster member {Member} has {Theirs} session shards, this node {Mine}: the newer member leaves")]
        public static partial void YoungerMemberMismatch(ILogger logger, string member, int theirs, int mine);
    }
}
