using Akka.Actor;
using Akka.Configuration;
using Connect.Actors.Mailboxes;
using Connect.Testing.Actors;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Mailboxes;

/// <summary>The lean mailbox of the per-link actors: every message arrives, each sender's in order, and leftovers go to dead letters.</summary>
public sealed class LeanMailboxTests(ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString(LeanMailbox.Hocon).WithFallback(ActorTestBase.ActorConfig), "lean-mailbox-test", output)
{
    private const int Senders = 4;
    private const int PerSender = 5_000;

    [Fact]
    public void An_actor_created_with_the_lean_mailbox_id_runs_on_a_lean_queue()
    {
        var actor = Sys.ActorOf(Props.Create(() => new Recorder(1, TestActor)).WithMailbox(LeanMailbox.Id));
        actor.Tell((0, 0));
        ExpectMsg<List<(int Sender, int Sequence)>>(); // started: the ref now points at its real cell

        var cell = Assert.IsType<ActorCell>(((ActorRefWithCell)actor).Underlying);
        Assert.IsType<LeanMessageQueue>(cell.Mailbox!.MessageQueue);
    }

    [Fact]
    public async Task Messages_from_many_threads_all_arrive_and_each_senders_in_order()
    {
        var actor = Sys.ActorOf(Props.Create(() => new Recorder(Senders * PerSender, TestActor)).WithMailbox(LeanMailbox.Id));

        await Task.WhenAll(Enumerable.Range(0, Senders).Select(sender => Task.Run(() =>
        {
            for (var i = 0; i < PerSender; i++)
            {
                actor.Tell((sender, i));
            }
        })));

        var received = await ExpectMsgAsync<List<(int Sender, int Sequence)>>(TimeSpan.FromSeconds(30));
        Assert.Equal(Senders * PerSender, received.Count);
        foreach (var group in received.GroupBy(m => m.Sender))
        {
            Assert.Equal(Enumerable.Range(0, PerSender), group.Select(m => m.Sequence));
        }
    }

    [Fact]
    public void Messages_left_in_the_queue_at_clean_up_go_to_dead_letters_in_order()
    {
        var queue = new LeanMessageQueue();
        var deadLetters = new LeanMessageQueue();
        Assert.False(queue.HasMessages);
        for (var i = 0; i < 3; i++)
        {
            queue.Enqueue(TestActor, new Envelope(i, TestActor));
        }
        Assert.True(queue.HasMessages);
        Assert.Equal(3, queue.Count);

        queue.CleanUp(TestActor, deadLetters);

        Assert.Equal(0, queue.Count);
        Assert.Equal(3, deadLetters.Count);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(deadLetters.TryDequeue(out var envelope));
            Assert.Equal(i, envelope.Message);
        }
    }

    /// <summary>Records what it receives and sends the list to <paramref name="report"/> once <paramref name="expected"/> have arrived.</summary>
    private sealed class Recorder : ReceiveActor
    {
        private readonly List<(int Sender, int Sequence)> _received = new();

        public Recorder(int expected, IActorRef report)
        {
            Receive<(int Sender, int Sequence)>(message =>
            {
                _received.Add(message);
                if (_received.Count == expected)
                {
                    report.Tell(_received);
                }
            });
        }
    }
}
