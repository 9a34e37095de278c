using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Connect.Actors.Mailboxes;

/// <summary>
/// An unbounded mailbox for the actors a node keeps one (or two) of per tunnel link, the link actor and the session
/// entity, that sit idle for minutes and then get a handful of messages. Akka's default mailbox is a
/// <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/>, whose first segment holds 32 envelopes from the
/// start: ~1 KiB per actor before its first message, about 2 KiB of every idle link (heap dump at 4,000 links,
/// docs/SCALING.md). This one is a plain queue under a lock: nothing allocated until the first message, then an array
/// of 4 envelopes that grows only as a backlog does. The lock is uncontended for actors this quiet; a busy actor keeps
/// the default mailbox.
/// </summary>
/// <remarks>Use it with <c>Props.WithMailbox(LeanMailbox.Id)</c> on a system whose config holds <see cref="Hocon"/>.</remarks>
public sealed class LeanMailbox(Settings settings, Config config) : MailboxType(settings, config), IProducesMessageQueue<LeanMessageQueue>
{
    /// <summary>The config path of this mailbox, for <see cref="Props.WithMailbox"/>.</summary>
    public const string Id = "connect-lean-mailbox";

    /// <summary>The config that defines <see cref="Id"/> (add it to the actor system's config).</summary>
    public const string Hocon = $"{Id}.mailbox-type = \"Connect.Actors.Mailboxes.LeanMailbox, Connect.Actors\"";

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new LeanMessageQueue();
}
