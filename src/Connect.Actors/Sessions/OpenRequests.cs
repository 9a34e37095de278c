using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Protocol;

namespace Connect.Actors.Sessions;

/// <summary>A request waiting in the entity for a usable link, answered to <paramref name="ReplyTo"/> (the newest copy's sender).</summary>
public sealed record PendingOpen(OpenStream Request, IActorRef ReplyTo, DateTimeOffset Deadline);

/// <summary>What the entity answered to a request id, kept so a late copy gets the same answer instead of a second grant.</summary>
public sealed record AnsweredOpen(string RequestId, IConnectMessage Answer, DateTimeOffset At);

/// <summary>How an arriving <see cref="OpenStream"/> relates to what the entity already has.</summary>
public enum OpenRequestKind
{
    /// <summary>First copy (or a request without an id, from a node that predates ids): decide it.</summary>
    New,
    /// <summary>A re-sent copy of a request that is waiting: it joins the waiting one (newest reply-to), counted once.</summary>
    CopyOfPending,
    /// <summary>A copy of a request already answered: it gets the same answer again, counted nothing.</summary>
    CopyOfAnswered,
}

/// <summary>
/// The entity's open requests by id: the ones waiting for a link and the recent answers. The broker re-sends a
/// request every few seconds while it has no answer (the first copy may have gone to a node that died), so one
/// proxy request can reach the entity several times; this record makes every copy after the first a no-op
/// for the limits, counters and link loads. Pure and immutable, like <see cref="SessionDecisions"/>.
/// </summary>
public sealed record OpenRequests(
    ImmutableList<PendingOpen> Pending,
    ImmutableDictionary<string, AnsweredOpen> Answered,
    ImmutableQueue<AnsweredOpen> AnsweredOrder)
{
    /// <summary>Most answers kept per session: a copy that arrives after its answer was forgotten is decided again (harmless: the broker keeps only its first answer).</summary>
    public const int MaxAnswersKept = 512;

    public static readonly OpenRequests Empty = new(ImmutableList<PendingOpen>.Empty, ImmutableDictionary<string, AnsweredOpen>.Empty, ImmutableQueue<AnsweredOpen>.Empty);

    /// <summary>Classifies an arriving request; <paramref name="answer"/> is the earlier answer for <see cref="OpenRequestKind.CopyOfAnswered"/>.</summary>
    public OpenRequestKind Classify(OpenStream request, out IConnectMessage? answer)
    {
        answer = null;
        if (string.IsNullOrEmpty(request.RequestId))
        {
            return OpenRequestKind.New;
        }
        if (Answered.TryGetValue(request.RequestId, out var answered))
        {
            answer = answered.Answer;
            return OpenRequestKind.CopyOfAnswered;
        }
        return Pending.Exists(p => p.Request.RequestId == request.RequestId) ? OpenRequestKind.CopyOfPending : OpenRequestKind.New;
    }

    /// <summary>A request starts waiting.</summary>
    public OpenRequests Hold(OpenStream request, IActorRef replyTo, DateTimeOffset deadline) =>
        this with { Pending = Pending.Add(new PendingOpen(request, replyTo, deadline)) };

    /// <summary>
    /// A copy joins its waiting request: the answer goes to the newest copy's sender (the older ask may belong to
    /// a path that is gone) and its exclusions are the newest; the deadline stays the first copy's, so copies never
    /// stretch the hold.
    /// </summary>
    public OpenRequests Join(OpenStream copy, IActorRef replyTo)
    {
        var index = Pending.FindIndex(p => p.Request.RequestId == copy.RequestId);
        return index < 0 ? this : this with { Pending = Pending.SetItem(index, Pending[index] with { Request = copy, ReplyTo = replyTo }) };
    }

    /// <summary>Takes the waiting requests out (to grant or re-hold them).</summary>
    public OpenRequests WithoutPending(out ImmutableList<PendingOpen> pending)
    {
        pending = Pending;
        return this with { Pending = ImmutableList<PendingOpen>.Empty };
    }

    /// <summary>Removes the waiting requests whose deadline has passed and returns them.</summary>
    public OpenRequests Expire(DateTimeOffset now, out ImmutableList<PendingOpen> expired)
    {
        expired = Pending.Where(p => p.Deadline <= now).ToImmutableList();
        return expired.IsEmpty ? this : this with { Pending = Pending.RemoveAll(p => p.Deadline <= now) };
    }

    /// <summary>Remembers the answer to a request for <paramref name="keepFor"/> (bounded by <see cref="MaxAnswersKept"/>); requests without an id are not remembered.</summary>
    public OpenRequests Answer(OpenStream request, IConnectMessage answer, DateTimeOffset now, TimeSpan keepFor)
    {
        var pruned = Prune(now - keepFor);
        if (string.IsNullOrEmpty(request.RequestId) || keepFor <= TimeSpan.Zero)
        {
            return pruned;
        }
        var entry = new AnsweredOpen(request.RequestId, answer, now);
        var answered = pruned.Answered.SetItem(request.RequestId, entry);
        var order = pruned.AnsweredOrder.Enqueue(entry);
        while (answered.Count > MaxAnswersKept)
        {
            order = order.Dequeue(out var oldest);
            if (answered.TryGetValue(oldest.RequestId, out var current) && ReferenceEquals(current, oldest))
            {
                answered = answered.Remove(oldest.RequestId);
            }
        }
        return pruned with { Answered = answered, AnsweredOrder = order };
    }

    /// <summary>Forgets answers given before <paramref name="before"/>.</summary>
    public OpenRequests Prune(DateTimeOffset before)
    {
        var answered = Answered;
        var order = AnsweredOrder;
        while (!order.IsEmpty && order.Peek().At < before)
        {
            order = order.Dequeue(out var oldest);
            if (answered.TryGetValue(oldest.RequestId, out var current) && ReferenceEquals(current, oldest))
            {
                answered = answered.Remove(oldest.RequestId);
            }
        }
        return ReferenceEquals(order, AnsweredOrder) ? this : this with { Answered = answered, AnsweredOrder = order };
    }
}
