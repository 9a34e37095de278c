using Akka.Actor;
using Akka.TestKit;
using Connect.Actors.Protocol;
using Connect.Routing.Links;
using Connect.Routing.Streams;
using Connect.Testing.Actors;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Connect.Routing.Tests.Streams;

/// <summary>
/// The broker against a probe that stands in for the shard region (it answers as the entity would) and a
/// registry holding real links on this node: multiplexer pairs over loopback WebSockets.
/// </summary>
public sealed class StreamBrokerTests(ITestOutputHelper output) : ActorTestBase(output), IAsyncLifetime
{
    private const string Session = "s1";
    private const string Node = "akka.tcp://connect@127.0.0.1:4053";

    private readonly LinkRegistry _registry = new();
    private readonly List<MuxPair> _pairs = [];
    private TestProbe _region = null!;

    public Task InitializeAsync()
    {
        _region = CreateTestProbe("region");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var pair in _pairs)
        {
            await pair.DisposeAsync();
        }
    }

    private async Task<MuxPair> AddLinkAsync(string linkId)
    {
        var pair = await MuxPair.StartAsync(TransportKind.WebSocket);
        _pairs.Add(pair);
        _registry.Add(new TunnelLink(linkId, Session, pair.Server, "127.0.0.1:50000", DateTimeOffset.UtcNow));
        return pair;
    }

    private StreamBroker Broker(TimeSpan? askTimeout = null, TimeSpan? resend = null) =>
        new(_region.Ref, _registry, Node, remote: null, askTimeout ?? TimeSpan.FromSeconds(10), NullLogger<StreamBroker>.Instance)
        {
            ResendInterval = resend ?? TimeSpan.FromSeconds(3),
        };

    private static StreamGranted Grant(string linkId) => new(Session, linkId, ActorRefs.Nobody, Node, "127.0.0.1:7000");

    [Fact]
    public async Task Granted_stream_is_opened_on_the_local_link()
    {
        var pair = await AddLinkAsync("L1");
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        var request = await _region.ExpectMsgAsync<OpenStream>(Bound);
        Assert.Equal(new OpenStream(Session, "echo:7", Node, request.ExcludeLinks, request.RequestId), request);
        Assert.Empty(request.ExcludeLinks);
        Assert.False(string.IsNullOrEmpty(request.RequestId));
        _region.Reply(Grant("L1"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(pair.Server, stream.Mux);
        Assert.Equal("echo:7", stream.Target);
        // It is a real stream to the agent: bytes come back from the echo target.
        await stream.WriteAsync("hello"u8.ToArray());
        var buffer = new byte[5];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Bound);
        Assert.Equal("hello"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task Refusal_becomes_a_broker_failure_with_the_entity_message()
    {
        await AddLinkAsync("L1");
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(new StreamRefused(Session, StreamRefusal.NoTunnel, "session 's1' has no connected agent (waited 10 s)"));

        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => opening.WaitAsync(Bound));
        Assert.Equal(BrokerFailure.NoTunnel, failure.Failure);
        Assert.Equal("session 's1' has no connected agent (waited 10 s)", failure.Message);
    }

    [Fact]
    public async Task Stream_limit_refusal_becomes_TooManyStreams()
    {
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(new StreamRefused(Session, StreamRefusal.TooManyStreams, "limit"));

        Assert.Equal(BrokerFailure.TooManyStreams, (await Assert.ThrowsAsync<StreamBrokerException>(() => opening.WaitAsync(Bound))).Failure);
    }

    [Fact]
    public async Task Grant_of_a_link_going_away_is_excluded_and_the_entity_asked_again()
    {
        var leaving = await AddLinkAsync("leaving");
        var staying = await AddLinkAsync("staying");
        Assert.True(leaving.Server.GoAway(GoAwayCode.Draining, "node draining", []));
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        var first = await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(Grant("leaving"));

        var again = await _region.ExpectMsgAsync<OpenStream>(Bound);
        Assert.Equal(["leaving"], again.ExcludeLinks);
        // A new attempt is a new request: the entity must not answer it with the grant it gave the first.
        Assert.NotEqual(first.RequestId, again.RequestId);
        _region.Reply(Grant("staying"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(staying.Server, stream.Mux);
    }

    [Fact]
    public async Task Grant_of_a_link_no_longer_on_this_node_is_excluded_and_the_entity_asked_again()
    {
        var staying = await AddLinkAsync("staying");
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(Grant("gone"));

        var again = await _region.ExpectMsgAsync<OpenStream>(Bound);
        Assert.Equal(["gone"], again.ExcludeLinks);
        _region.Reply(Grant("staying"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(staying.Server, stream.Mux);
    }

    [Fact]
    public async Task Grants_that_keep_naming_a_gone_link_end_in_a_broker_failure()
    {
        var opening = Broker().OpenAsync(Session, "echo:7", CancellationToken.None);

        // An entity that is out of date keeps answering with a link this node no longer holds.
        for (var attempt = 1; attempt <= 8; attempt++)
        {
            await _region.ExpectMsgAsync<OpenStream>(Bound);
            _region.Reply(Grant("gone"));
        }

        // The edge maps StreamBrokerException to an answer; anything else would escape as a bare 500.
        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => opening.WaitAsync(Bound));
        Assert.Equal(BrokerFailure.NoTunnel, failure.Failure);
        Assert.Contains("'s1'", failure.Message);
    }

    [Fact]
    public async Task Unanswered_ask_is_sent_again_and_the_answer_to_the_resend_is_used()
    {
        var pair = await AddLinkAsync("L1");
        var opening = Broker(resend: TimeSpan.FromMilliseconds(200)).OpenAsync(Session, "echo:7", CancellationToken.None);

        var first = await _region.ExpectMsgAsync<OpenStream>(Bound);
        var firstAsker = _region.LastSender;
        // Nobody answers the first ask (its shard's node is gone): the broker asks again.
        var second = await _region.ExpectMsgAsync<OpenStream>(Bound);
        // The same request, id included: the entity treats the copies as one.
        Assert.Equal(first, second);
        Assert.False(string.IsNullOrEmpty(second.RequestId));
        Assert.NotEqual(firstAsker, _region.LastSender);

        _region.Reply(Grant("L1"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(pair.Server, stream.Mux);
        Assert.Equal(1, pair.Server.ActiveStreams);
    }

    [Fact]
    public async Task Answer_to_the_first_ask_after_a_resend_is_used()
    {
        var pair = await AddLinkAsync("L1");
        var opening = Broker(resend: TimeSpan.FromMilliseconds(200)).OpenAsync(Session, "echo:7", CancellationToken.None);

        await _region.ExpectMsgAsync<OpenStream>(Bound);
        var firstAsker = _region.LastSender;
        await _region.ExpectMsgAsync<OpenStream>(Bound);

        // The first entity was slow, not gone: its answer still counts.
        firstAsker.Tell(Grant("L1"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(pair.Server, stream.Mux);
    }

    [Fact]
    public async Task Entity_that_never_answers_is_a_timeout()
    {
        var opening = Broker(askTimeout: TimeSpan.FromMilliseconds(500), resend: TimeSpan.FromMilliseconds(200)).OpenAsync(Session, "echo:7", CancellationToken.None);

        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => opening.WaitAsync(Bound));

        Assert.Equal(BrokerFailure.Timeout, failure.Failure);
        Assert.Contains("'s1'", failure.Message);
    }

    [Fact]
    public async Task Agent_refusal_becomes_AgentRefused_with_the_open_error()
    {
        await AddLinkAsync("L1");
        var opening = Broker().OpenAsync(Session, "refuse:1", CancellationToken.None);

        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(Grant("L1"));

        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => opening.WaitAsync(Bound));
        Assert.Equal(BrokerFailure.AgentRefused, failure.Failure);
        Assert.Equal(OpenErrorCode.ConnectionRefused, failure.OpenError);
    }

    private StreamBroker CachingBroker(IRemoteStreamOpener? remote = null, TimeSpan? fallbackAfter = null) =>
        new(_region.Ref, _registry, Node, remote, TimeSpan.FromSeconds(10), NullLogger<StreamBroker>.Instance, new GrantCache(TimeProvider.System, TimeSpan.FromSeconds(30)))
        {
            ResendInterval = TimeSpan.FromSeconds(3),
            FallbackAfter = fallbackAfter ?? TimeSpan.FromSeconds(1),
        };

    /// <summary>Opens streams on a multiplexer pair that stands for a link on another node.</summary>
    private sealed class FakeRemote(MuxPair pair) : IRemoteStreamOpener
    {
        public int Opens;

        public Task<MuxStream> OpenAsync(string dataEndpoint, string linkId, string target, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Opens);
            return pair.Server.OpenStreamAsync(target, cancellationToken);
        }
    }

    [Fact]
    public async Task Streams_on_a_local_link_known_from_a_grant_open_without_asking_the_entity()
    {
        const int Streams = 20;
        var pair = await AddLinkAsync("L1");
        var broker = CachingBroker();

        var first = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(Grant("L1"));
        var opened = new List<MuxStream> { await first.WaitAsync(Bound) };
        for (var i = 1; i < Streams; i++)
        {
            opened.Add(await broker.OpenAsync(Session, "echo:7", CancellationToken.None).WaitAsync(Bound));
        }

        // One ask for 20 streams (a broker without the cache asks 20 times: the next test's baseline).
        Assert.Equal(1, broker.EntityAsks);
        await _region.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
        Assert.All(opened, s => Assert.Same(pair.Server, s.Mux));
        Assert.Equal(Streams, pair.Server.ActiveStreams);
        foreach (var stream in opened)
        {
            await stream.DisposeAsync();
        }
    }

    [Fact]
    public async Task Without_the_cache_every_stream_asks_the_entity()
    {
        const int Streams = 20;
        await AddLinkAsync("L1");
        var broker = Broker();
        for (var i = 0; i < Streams; i++)
        {
            var opening = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
            await _region.ExpectMsgAsync<OpenStream>(Bound);
            _region.Reply(Grant("L1"));
            await (await opening.WaitAsync(Bound)).DisposeAsync();
        }

        Assert.Equal(Streams, broker.EntityAsks);
    }

    [Fact]
    public async Task Entity_that_does_not_answer_costs_latency_not_a_failure_when_a_healthy_link_is_cached()
    {
        var elsewhere = await MuxPair.StartAsync(TransportKind.WebSocket);
        _pairs.Add(elsewhere);
        var remote = new FakeRemote(elsewhere);
        var broker = CachingBroker(remote, fallbackAfter: TimeSpan.FromMilliseconds(300));
        var remoteGrant = new StreamGranted(Session, "R1", ActorRefs.Nobody, "akka.tcp://connect@127.0.0.1:4054", "127.0.0.1:7001");

        var first = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(remoteGrant);
        await (await first.WaitAsync(Bound)).DisposeAsync();

        // The entity's node freezes: nobody answers. The request still gets its stream, on the cached link.
        var second = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        await using var stream = await second.WaitAsync(Bound);

        Assert.Same(elsewhere.Server, stream.Mux);
        Assert.Equal(2, remote.Opens);
        await stream.WriteAsync("hello"u8.ToArray());
        var buffer = new byte[5];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Bound);
        Assert.Equal("hello"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task Cached_local_link_that_went_away_is_forgotten_and_the_entity_asked()
    {
        var leaving = await AddLinkAsync("leaving");
        var staying = await AddLinkAsync("staying");
        var broker = CachingBroker();
        var first = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        _region.Reply(Grant("leaving"));
        await (await first.WaitAsync(Bound)).DisposeAsync();

        Assert.True(leaving.Server.GoAway(GoAwayCode.Draining, "node draining", []));
        var second = broker.OpenAsync(Session, "echo:7", CancellationToken.None);

        var ask = await _region.ExpectMsgAsync<OpenStream>(Bound);
        Assert.Equal(["leaving"], ask.ExcludeLinks);
        _region.Reply(Grant("staying"));
        await using var stream = await second.WaitAsync(Bound);
        Assert.Same(staying.Server, stream.Mux);
    }

    [Fact]
    public async Task Entity_that_does_not_answer_and_no_cached_link_is_still_a_timeout()
    {
        var broker = new StreamBroker(_region.Ref, _registry, Node, null, TimeSpan.FromMilliseconds(800), NullLogger<StreamBroker>.Instance, new GrantCache(TimeProvider.System, TimeSpan.FromSeconds(30)))
        {
            ResendInterval = TimeSpan.FromMilliseconds(300),
            FallbackAfter = TimeSpan.FromMilliseconds(200),
        };

        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => broker.OpenAsync(Session, "echo:7", CancellationToken.None).WaitAsync(Bound));

        Assert.Equal(BrokerFailure.Timeout, failure.Failure);
    }

    /// <summary>Stands for the other nodes' link registries: answers each lookup with <paramref name="answer"/>.</summary>
    private sealed class FakePeers(Func<Task<IReadOnlyList<StreamGranted>>> answer) : IPeerLinkFinder
    {
        public int Lookups;

        public Task<IReadOnlyList<StreamGranted>> FindAsync(string sessionId, System.Collections.Immutable.ImmutableHashSet<string> exclude, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Lookups);
            return answer();
        }
    }

    private StreamBroker PeerBroker(IPeerLinkFinder peers, GrantCache cache, IRemoteStreamOpener? remote = null, TimeSpan? askTimeout = null) =>
        new(_region.Ref, _registry, Node, remote, askTimeout ?? TimeSpan.FromSeconds(10), NullLogger<StreamBroker>.Instance, cache, TimeProvider.System, peers)
        {
            ResendInterval = TimeSpan.FromSeconds(3),
            FallbackAfter = TimeSpan.FromMilliseconds(200),
            PeerLookupInterval = TimeSpan.FromMilliseconds(300),
        };

    [Fact]
    public async Task Entity_that_does_not_answer_with_nothing_cached_uses_a_link_another_node_reports_and_remembers_it()
    {
        var elsewhere = await MuxPair.StartAsync(TransportKind.WebSocket);
        _pairs.Add(elsewhere);
        var remote = new FakeRemote(elsewhere);
        var found = new StreamGranted(Session, "R1", ActorRefs.Nobody, "akka.tcp://connect@127.0.0.1:4054", "127.0.0.1:7001");
        var peers = new FakePeers(() => Task.FromResult<IReadOnlyList<StreamGranted>>([found]));
        var cache = new GrantCache(TimeProvider.System, TimeSpan.FromSeconds(30));
        var broker = PeerBroker(peers, cache, remote);

        var opening = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        await using var stream = await opening.WaitAsync(Bound);

        Assert.Same(elsewhere.Server, stream.Mux);
        Assert.Equal(1, peers.Lookups);
        Assert.Equal(1, broker.PeerFallbacks);
        Assert.Equal(["R1"], cache.Healthy(Session, []).Select(g => g.LinkId));
        await stream.WriteAsync("hello"u8.ToArray());
        var buffer = new byte[5];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Bound);
        Assert.Equal("hello"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task A_peer_lookup_that_never_answers_does_not_hold_the_entity_answer()
    {
        var elsewhere = await MuxPair.StartAsync(TransportKind.WebSocket);
        _pairs.Add(elsewhere);
        var silent = new TaskCompletionSource<IReadOnlyList<StreamGranted>>();
        var peers = new FakePeers(() => silent.Task);
        var broker = PeerBroker(peers, new GrantCache(TimeProvider.System, TimeSpan.FromSeconds(30)), new FakeRemote(elsewhere));

        var opening = broker.OpenAsync(Session, "echo:7", CancellationToken.None);
        await _region.ExpectMsgAsync<OpenStream>(Bound);
        var asker = _region.LastSender;
        await Connect.Testing.Eventually.UntilAsync(() => Volatile.Read(ref peers.Lookups) >= 1, "the broker asked the other nodes", Bound);
        // The entity answers late (a slow node, not a dead one) while the lookup still hangs: its grant is used at once.
        asker.Tell(new StreamGranted(Session, "R1", ActorRefs.Nobody, "akka.tcp://connect@127.0.0.1:4054", "127.0.0.1:7001"));

        await using var stream = await opening.WaitAsync(Bound);
        Assert.Same(elsewhere.Server, stream.Mux);
        Assert.False(silent.Task.IsCompleted);
        Assert.Equal(1, peers.Lookups);
        Assert.Equal(0, broker.PeerFallbacks);
    }

    [Fact]
    public async Task Entity_that_does_not_answer_and_no_node_reports_a_link_is_still_a_timeout_with_one_lookup_at_a_time()
    {
        var peers = new FakePeers(() => Task.FromResult<IReadOnlyList<StreamGranted>>([]));
        var broker = PeerBroker(peers, new GrantCache(TimeProvider.System, TimeSpan.FromSeconds(30)), askTimeout: TimeSpan.FromMilliseconds(1500));

        var failure = await Assert.ThrowsAsync<StreamBrokerException>(() => broker.OpenAsync(Session, "echo:7", CancellationToken.None).WaitAsync(Bound));

        Assert.Equal(BrokerFailure.Timeout, failure.Failure);
        // Asked again every PeerLookupInterval (300 ms) from FallbackAfter (200 ms) until the 1.5 s timeout: a few, not one per recheck tick.
        Assert.InRange(peers.Lookups, 1, 5);
        Assert.Equal(0, broker.PeerFallbacks);
    }
}
