using Akka.Actor;
using Akka.Cluster;
using Connect.Actors.Protocol;
using Connect.Actors.Serialization;
using Connect.Testing;
using Connect.Testing.Actors;
using Xunit.Abstractions;

namespace Connect.Actors.Tests.Serialization;

/// <summary>
/// The serializer's counts are the node's remote traffic of Connect messages: a two-node cluster in this process
/// (two actor systems on loopback remoting) sees every message that crosses between them counted once on each side,
/// by type, and a message sent inside one node not at all (Akka.Remote serializes only what leaves the node).
/// </summary>
public sealed class RemoteMessageCountsTests(ITestOutputHelper output) : ActorTestBase(output), IAsyncLifetime
{
    private const int Messages = 25;
    private static readonly TimeSpan ClusterBound = TimeSpan.FromSeconds(30);

    private ActorSystem _other = null!;

    public async Task InitializeAsync()
    {
        // The same configuration as this node (remoting on a free loopback port, the serializer bound, the TestKit's settings).
        _other = ActorSystem.Create(Sys.Name, Sys.Settings.Config);
        var first = Cluster.Get(Sys);
        first.Join(first.SelfAddress);
        Cluster.Get(_other).Join(first.SelfAddress);
        await Eventually.UntilAsync(
            () => new[] { Sys, _other }.All(s => Cluster.Get(s).State.Members.Count(m => m.Status == MemberStatus.Up) == 2),
            "both nodes see two members Up",
            ClusterBound);
    }

    public async Task DisposeAsync() => await _other.Terminate().WaitAsync(ClusterBound);

    /// <summary>Answers every <see cref="GetNodeSummary"/> with a <see cref="LinkUnknown"/> (any two Connect messages would do).</summary>
    private sealed class Answering : ReceiveActor
    {
        public Answering() => Receive<GetNodeSummary>(_ => Sender.Tell(new LinkUnknown("s", "l")));
    }

    private static RemoteMessageCounts CountsOf(ActorSystem system) =>
        ConnectMessageSerializer.Of(system)?.Counts ?? throw new InvalidOperationException("no ConnectMessageSerializer bound");

    [Fact]
    public async Task Messages_between_two_nodes_are_counted_once_each_way_by_type_and_local_ones_not_at_all()
    {
        Sys.ActorOf(Props.Create(() => new Answering()), "answering");
        var here = CountsOf(Sys);
        var there = CountsOf(_other);

        // Remote: the other node asks this one, through Akka.Remote.
        var remoteAsker = CreateTestProbe(_other);
        var selection = _other.ActorSelection(new RootActorPath(Cluster.Get(Sys).SelfAddress) / "user" / "answering");
        for (var i = 0; i < Messages; i++)
        {
            selection.Tell(GetNodeSummary.Instance, remoteAsker.Ref);
        }
        for (var i = 0; i < Messages; i++)
        {
            await remoteAsker.ExpectMsgAsync<LinkUnknown>(Bound);
        }
        Assert.Equal(Messages, there.Sent("get-node-summary"));
        Assert.Equal(Messages, here.Received("get-node-summary"));
        Assert.Equal(Messages, here.Sent("unknown-link"));
        Assert.Equal(Messages, there.Received("unknown-link"));
        Assert.Equal(0, here.Sent("get-node-summary"));
        Assert.Equal(0, there.Sent("unknown-link"));

        // Local: the same exchange inside this node moves no count on either node.
        var localAsker = CreateTestProbe();
        var local = Sys.ActorSelection("/user/answering");
        for (var i = 0; i < Messages; i++)
        {
            local.Tell(GetNodeSummary.Instance, localAsker.Ref);
        }
        for (var i = 0; i < Messages; i++)
        {
            await localAsker.ExpectMsgAsync<LinkUnknown>(Bound);
        }
        Assert.Equal(Messages, here.Received("get-node-summary"));
        Assert.Equal(Messages, here.Sent("unknown-link"));
        Assert.Equal(Messages, there.Sent("get-node-summary"));
        Assert.Equal(Messages, there.Received("unknown-link"));

        var totals = here.Totals().Single(t => t.Type == "unknown-link");
        Assert.True(totals.SentBytes > Messages * 10, $"bytes of {Messages} LinkUnknown sent: {totals.SentBytes}");
    }

    [Fact]
    public void A_message_of_an_unknown_manifest_is_counted_as_unknown_and_refused()
    {
        var serializer = ConnectMessageSerializer.Of(Sys)!;
        Assert.ThrowsAny<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{}"u8.ToArray(), "from-a-newer-node"));
        Assert.Equal(1, serializer.Counts.Received(RemoteMessageCounts.UnknownType));
    }
}
