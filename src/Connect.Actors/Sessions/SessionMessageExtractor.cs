using Akka.Cluster.Sharding;
using Connect.Actors.Protocol;

namespace Connect.Actors.Sessions;

/// <summary>Routes every <see cref="IWithSessionId"/> to the entity named by the session; shards by hash of the name.</summary>
public sealed class SessionMessageExtractor(int shardCount) : HashCodeMessageExtractor(shardCount)
{
    public override string EntityId(object message) => message is IWithSessionId withId ? withId.SessionId : null!;
}

/// <summary>The key under which the session shard region is registered with Akka.Hosting.</summary>
public sealed class SessionRegion
{
    public const string TypeName = "session";
}
