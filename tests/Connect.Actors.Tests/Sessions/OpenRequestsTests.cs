using System.Collections.Immutable;
using Akka.Actor;
using Connect.Actors.Protocol;
using Connect.Actors.Sessions;

namespace Connect.Actors.Tests.Sessions;

/// <summary>The entity's request ledger as pure functions: copies of one request (same id) count and are answered once.</summary>
public sealed class OpenRequestsTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    private static OpenStream Open(string? id, params string[] exclude) => new("s1", "example.com:443", "node-x", exclude.ToImmutableHashSet(), id);

    private static readonly StreamGranted GrantL1 = new("s1", "L1", ActorRefs.Nobody, "node-L1", "L1:7000");

    [Fact]
    public void First_copy_is_new_and_a_copy_of_a_waiting_request_joins_it()
    {
        var requests = OpenRequests.Empty;
        Assert.Equal(OpenRequestKind.New, requests.Classify(Open("r1"), out _));

        requests = requests.Hold(Open("r1"), ActorRefs.Nobody, T0.AddSeconds(10));

        Assert.Equal(OpenRequestKind.CopyOfPending, requests.Classify(Open("r1"), out var answer));
        Assert.Null(answer);
        Assert.Equal(OpenRequestKind.New, requests.Classify(Open("r2"), out _));
    }

    [Fact]
    public void Joined_copy_takes_over_the_reply_and_exclusions_but_keeps_the_first_deadline()
    {
        var newest = new FakeRef("newest");
        var requests = OpenRequests.Empty.Hold(Open("r1"), ActorRefs.Nobody, T0.AddSeconds(10));

        requests = requests.Join(Open("r1", "L9"), newest);

        var pending = Assert.Single(requests.Pending);
        Assert.Same(newest, pending.ReplyTo);
        Assert.Equal(["L9"], pending.Request.ExcludeLinks);
        Assert.Equal(T0.AddSeconds(10), pending.Deadline);
    }

    [Fact]
    public void Copy_of_an_answered_request_gets_the_same_answer()
    {
        var requests = OpenRequests.Empty.Answer(Open("r1"), GrantL1, T0, Window);

        Assert.Equal(OpenRequestKind.CopyOfAnswered, requests.Classify(Open("r1"), out var answer));
        Assert.Same(GrantL1, answer);
    }

    [Fact]
    public void Requests_without_an_id_are_each_new_and_not_remembered()
    {
        // A node that predates request ids sends none: each of its copies is decided on its own, as before.
        var requests = OpenRequests.Empty.Hold(Open(null), ActorRefs.Nobody, T0).Answer(Open(null), GrantL1, T0, Window);

        Assert.Equal(OpenRequestKind.New, requests.Classify(Open(null), out _));
        Assert.Empty(requests.Answered);
    }

    [Fact]
    public void Answers_are_forgotten_after_the_window()
    {
        var requests = OpenRequests.Empty.Answer(Open("r1"), GrantL1, T0, Window);

        Assert.Equal(OpenRequestKind.CopyOfAnswered, requests.Prune(T0).Classify(Open("r1"), out _));
        requests = requests.Answer(Open("r2"), GrantL1, T0 + Window + TimeSpan.FromSeconds(1), Window);

        Assert.Equal(OpenRequestKind.New, requests.Classify(Open("r1"), out _));
        Assert.Equal(OpenRequestKind.CopyOfAnswered, requests.Classify(Open("r2"), out _));
        Assert.Single(requests.AnsweredOrder);
    }

    [Fact]
    public void Answers_kept_are_bounded()
    {
        var requests = OpenRequests.Empty;
        for (var i = 0; i < OpenRequests.MaxAnswersKept + 10; i++)
        {
            requests = requests.Answer(Open("r" + i), GrantL1, T0, Window);
        }

        Assert.Equal(OpenRequests.MaxAnswersKept, requests.Answered.Count);
        Assert.Equal(OpenRequestKind.New, requests.Classify(Open("r0"), out _));
        Assert.Equal(OpenRequestKind.CopyOfAnswered, requests.Classify(Open("r" + (OpenRequests.MaxAnswersKept + 9)), out _));
    }

    [Fact]
    public void Expire_takes_out_only_requests_past_their_deadline()
    {
        var requests = OpenRequests.Empty
            .Hold(Open("early"), ActorRefs.Nobody, T0.AddSeconds(5))
            .Hold(Open("late"), ActorRefs.Nobody, T0.AddSeconds(10));

        requests = requests.Expire(T0.AddSeconds(5), out var expired);

        Assert.Equal("early", Assert.Single(expired).Request.RequestId);
        Assert.Equal("late", Assert.Single(requests.Pending).Request.RequestId);
    }

    /// <summary>A distinct actor reference without an actor system.</summary>
    private sealed class FakeRef(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "fake")) / name;

        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
