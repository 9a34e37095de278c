using System.Security.Cryptography;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;

namespace Connect.Tunnel.Tests;

/// <summary>Two real multiplexers on a loopback link, over WebSockets (agent links) and over plain TCP (node channels).</summary>
public class TunnelMuxTests
{
    public static TheoryData<TransportKind> Transports => new() { TransportKind.WebSocket, TransportKind.Stream };

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var result = new MemoryStream();
        await stream.CopyToAsync(result).WaitAsync(Timeouts.Default);
        return result.ToArray();
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Opened_stream_echoes_bytes_and_ends_with_fin(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var stream = await link.Server.OpenStreamAsync("echo:7").WaitAsync(Timeouts.Default);
        Assert.Equal(0u, stream.Id % 2); // the side that did not dial opens even ids
        Assert.True(stream.LocallyOpened);
        Assert.Equal("echo:7", stream.Target);

        var sent = RandomBytes(100_000, 1);
        await stream.WriteAsync(sent).AsTask().WaitAsync(Timeouts.Default);
        await stream.CompleteWritesAsync();

        Assert.Equal(sent, await ReadToEndAsync(stream));
        Assert.Equal(sent.Length, stream.BytesWritten);
        Assert.Equal(sent.Length, stream.BytesRead);
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "both ends to forget the finished stream");
        Assert.Equal(1, link.Server.StreamsOpened);
        Assert.Equal(1, link.Agent.StreamsOpened);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Stream_ids_of_one_side_keep_their_parity_and_increase(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind, server: o => o with { AcceptInboundStreams = true });
        var ids = new List<uint>();
        for (var i = 0; i < 3; i++)
        {
            await using var stream = await link.Server.OpenStreamAsync("echo").WaitAsync(Timeouts.Default);
            ids.Add(stream.Id);
            await stream.CompleteWritesAsync();
            Assert.Empty(await ReadToEndAsync(stream));
        }
        Assert.Equal(new uint[] { 2, 4, 6 }, ids);

        // The dialler (the agent) opens odd ids; here the server answers with OPEN_ERR, having no handler.
        var refused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Agent.OpenStreamAsync("anything:1").WaitAsync(Timeouts.Default));
        Assert.Equal(OpenErrorCode.TooManyStreams, refused.Code);
        Assert.Equal(0, link.Agent.ActiveStreams);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Refused_open_surfaces_the_code_and_reason_as_StreamOpenException(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var refused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Server.OpenStreamAsync("refuse.example:22").WaitAsync(Timeouts.Default));
        Assert.Equal(OpenErrorCode.ConnectionRefused, refused.Code);
        Assert.Equal("connection refused by refuse.example:22", refused.Reason);
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "the refused stream to be forgotten");

        // The link is unharmed: the next stream works.
        await using var stream = await link.Server.OpenStreamAsync("echo").WaitAsync(Timeouts.Default);
        await stream.WriteAsync(new byte[] { 1, 2, 3 });
        await stream.CompleteWritesAsync();
        Assert.Equal(new byte[] { 1, 2, 3 }, await ReadToEndAsync(stream));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Half_closed_stream_still_receives_the_reply_and_reads_zero_after_fin(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var client = await link.Server.OpenStreamAsync("db:5432").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();

        // The client sends its request and half-closes, as an HTTP/1.0 client or `nc -N` does.
        await client.WriteAsync("request"u8.ToArray());
        await client.CompleteWritesAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.WriteAsync(new byte[] { 1 }).AsTask());

        // The target sees the request, then end of stream, and only then answers.
        Assert.Equal("request"u8.ToArray(), await ReadToEndAsync(target));
        Assert.Equal(0, await target.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(1, link.Agent.ActiveStreams); // half-closed, not closed

        var reply = RandomBytes(300_000, 2); // more than one window: credit still flows towards the half-closed side
        var write = Task.Run(async () =>
        {
            await target.WriteAsync(reply);
            await target.CompleteWritesAsync();
        });
        Assert.Equal(reply, await ReadToEndAsync(client));
        await write.WaitAsync(Timeouts.Default);
        Assert.Equal(0, await client.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await client.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "the stream closed both ways to be forgotten");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Sixteen_MiB_each_way_arrive_byte_identical_on_one_stream(TransportKind kind)
    {
        const int size = 16 * 1024 * 1024;
        await using var link = await MuxPair.StartAsync(kind);
        await using var client = await link.Server.OpenStreamAsync("bulk:9").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();
        var up = RandomBytes(size, 3);
        var down = RandomBytes(size, 4);

        static async Task SendAsync(MuxStream stream, byte[] data)
        {
            for (var offset = 0; offset < data.Length; offset += 100_000)
            {
                await stream.WriteAsync(data.AsMemory(offset, Math.Min(100_000, data.Length - offset)));
            }
            await stream.CompleteWritesAsync();
        }

        static async Task<(byte[] Hash, long Count)> HashAsync(MuxStream stream)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[50_000];
            long count = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                count += read;
            }
            return (hash.GetHashAndReset(), count);
        }

        var work = Task.WhenAll(
            Task.Run(() => SendAsync(client, up)),
            Task.Run(() => SendAsync(target, down)));
        var received = Task.Run(() => HashAsync(target));
        var replied = Task.Run(() => HashAsync(client));
        await work.WaitAsync(Timeouts.Bulk);

        var (upHash, upCount) = await received.WaitAsync(Timeouts.Bulk);
        var (downHash, downCount) = await replied.WaitAsync(Timeouts.Bulk);
        Assert.Equal(size, upCount);
        Assert.Equal(size, downCount);
        Assert.Equal(SHA256.HashData(up), upHash);
        Assert.Equal(SHA256.HashData(down), downHash);
        Assert.True(link.Server.BytesOut > size && link.Server.BytesIn > size);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_hundred_concurrent_streams_each_get_their_own_bytes_back(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            await using var stream = await link.Server.OpenStreamAsync($"echo-{i}:80");
            var sent = RandomBytes(20_000 + i * 997, 100 + i);
            var reading = ReadToEndAsync(stream);
            await stream.WriteAsync(sent);
            await stream.CompleteWritesAsync();
            return (Sent: sent, Received: await reading, stream.Id);
        }))).WaitAsync(Timeouts.Bulk);

        Assert.All(results, r => Assert.Equal(r.Sent, r.Received));
        Assert.Equal(100, results.Select(r => r.Id).Distinct().Count());
        Assert.Equal(100, link.Agent.StreamsOpened);
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "all hundred streams to be forgotten");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Opens_racing_on_many_threads_reach_the_peer_in_id_order(TransportKind kind)
    {
        // The peer closes the link (1002) when OPEN ids do not increase, so this fails if two opens overtake each other.
        await using var link = await MuxPair.StartAsync(kind);
        var refusals = await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            var codes = new List<OpenErrorCode>();
            for (var i = 0; i < 150; i++)
            {
                var refused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Server.OpenStreamAsync($"refuse-{worker}-{i}:1"));
                codes.Add(refused.Code);
            }
            return codes;
        }))).WaitAsync(Timeouts.Bulk);

        Assert.All(refusals.SelectMany(c => c), code => Assert.Equal(OpenErrorCode.ConnectionRefused, code));
        Assert.False(link.Agent.IsClosed);
        Assert.Equal(1200, link.Agent.StreamsOpened);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_slow_reader_does_not_stall_a_fast_stream_and_buffers_at_most_one_window(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var slowClient = await link.Server.OpenStreamAsync("slow:1").WaitAsync(Timeouts.Default);
        await using var slowTarget = await link.AcceptedAsync();
        await using var fastClient = await link.Server.OpenStreamAsync("fast:2").WaitAsync(Timeouts.Default);
        await using var fastTarget = await link.AcceptedAsync();

        // 2 MiB towards a target that does not read: the writer must stop at the window, not fill memory.
        var slowData = RandomBytes(2 * 1024 * 1024, 5);
        var slowWrite = Task.Run(async () =>
        {
            await slowClient.WriteAsync(slowData);
            await slowClient.CompleteWritesAsync();
        });
        await Timeouts.UntilAsync(() => slowTarget.BufferedBytes == ProtocolLimits.InitialWindow, "the slow stream's window to fill");

        // Meanwhile 8 MiB go through the fast stream on the same link.
        var maxBuffered = 0;
        var fastData = RandomBytes(8 * 1024 * 1024, 6);
        var fastRead = Task.Run(async () =>
        {
            var received = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await fastTarget.ReadAsync(buffer)) > 0)
            {
                received.Write(buffer, 0, read);
                maxBuffered = Math.Max(maxBuffered, slowTarget.BufferedBytes);
            }
            return received.ToArray();
        });
        await fastClient.WriteAsync(fastData).AsTask().WaitAsync(Timeouts.Bulk);
        await fastClient.CompleteWritesAsync();
        Assert.Equal(fastData, await fastRead.WaitAsync(Timeouts.Bulk));

        Assert.False(slowWrite.IsCompleted, "the slow stream's writer should still wait for credit");
        Assert.Equal(ProtocolLimits.InitialWindow, slowClient.BytesWritten);
        Assert.Equal(ProtocolLimits.InitialWindow, slowTarget.BufferedBytes);
        Assert.Equal(ProtocolLimits.InitialWindow, maxBuffered);

        // Now the slow reader reads: credit flows again and every byte arrives, never more than a window buffered.
        var slowReceived = new MemoryStream();
        var chunk = new byte[10_000];
        int n;
        while ((n = await slowTarget.ReadAsync(chunk).AsTask().WaitAsync(Timeouts.Default)) > 0)
        {
            Assert.InRange(slowTarget.BufferedBytes, 0, ProtocolLimits.InitialWindow);
            slowReceived.Write(chunk, 0, n);
        }
        await slowWrite.WaitAsync(Timeouts.Default);
        Assert.Equal(slowData, slowReceived.ToArray());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Reset_reaches_the_peer_reader_and_writer_as_StreamResetException(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var client = await link.Server.OpenStreamAsync("db:1").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();
        await client.WriteAsync(new byte[1000]);

        client.Reset(ResetCode.ConnectionReset, "proxy client went away");

        var reset = await Assert.ThrowsAsync<StreamResetException>(async () =>
        {
            var buffer = new byte[4096];
            while (await target.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default) > 0)
            {
            }
        });
        Assert.Equal(ResetCode.ConnectionReset, reset.Code);
        Assert.True(reset.ByPeer);
        Assert.Equal("proxy client went away", reset.Reason);
        Assert.Equal(0, target.BufferedBytes);
        await Assert.ThrowsAsync<StreamResetException>(() => target.WriteAsync(new byte[1]).AsTask());

        var local = await Assert.ThrowsAsync<StreamResetException>(() => client.ReadAsync(new byte[1]).AsTask());
        Assert.False(local.ByPeer);
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0 && link.Agent.ActiveStreams == 0, "the reset stream to be forgotten on both ends");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Disposing_an_unfinished_stream_resets_it_with_cancel(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        var client = await link.Server.OpenStreamAsync("db:1").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();
        await client.DisposeAsync();

        var reset = await Assert.ThrowsAsync<StreamResetException>(() => target.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(ResetCode.Cancel, reset.Code);
        Assert.True(reset.ByPeer);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_reader_blocked_in_read_wakes_up_with_the_reset(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var client = await link.Server.OpenStreamAsync("db:1").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();
        var pending = client.ReadAsync(new byte[10]).AsTask();
        Assert.False(pending.IsCompleted);

        target.Reset(ResetCode.DrainDeadline, "drain deadline passed");

        var reset = await Assert.ThrowsAsync<StreamResetException>(() => pending.WaitAsync(Timeouts.Default));
        Assert.Equal(ResetCode.DrainDeadline, reset.Code);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task GoAway_lets_open_streams_finish_and_refuses_new_ones_on_both_ends(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind, server: o => o with { AcceptInboundStreams = true });
        var received = new TaskCompletionSource<GoAwayInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        link.Agent.GoAwayReceived += info => received.TrySetResult(info);
        await using var client = await link.Server.OpenStreamAsync("db:5432").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();
        await client.WriteAsync("before"u8.ToArray());

        Assert.True(link.Server.GoAway(GoAwayCode.Draining, "node-a is draining", new[] { "wss://node-b:443", "wss://node-c:443" }));
        Assert.False(link.Server.GoAway(GoAwayCode.Draining, "again", Array.Empty<string>()));

        var info = await received.Task.WaitAsync(Timeouts.Default);
        Assert.Equal(GoAwayCode.Draining, info.Code);
        Assert.Equal("node-a is draining", info.Reason);
        Assert.Equal(new[] { "wss://node-b:443", "wss://node-c:443" }, info.SuggestedServers);
        Assert.True(link.Server.IsGoingAway);
        Assert.True(link.Agent.IsGoingAway);

        var senderRefused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Server.OpenStreamAsync("db:5432"));
        Assert.Equal(OpenErrorCode.GoingAway, senderRefused.Code);
        var receiverRefused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Agent.OpenStreamAsync("db:5432"));
        Assert.Equal(OpenErrorCode.GoingAway, receiverRefused.Code);

        // The stream that was open goes on in both directions until it ends as usual.
        await client.WriteAsync("after"u8.ToArray());
        await client.CompleteWritesAsync();
        Assert.Equal("beforeafter"u8.ToArray(), await ReadToEndAsync(target));
        await target.WriteAsync("reply"u8.ToArray());
        await target.CompleteWritesAsync();
        Assert.Equal("reply"u8.ToArray(), await ReadToEndAsync(client));
        await Timeouts.UntilAsync(() => link.Server.ActiveStreams == 0, "the drained link to have no streams");
        Assert.False(link.Server.IsClosed);
        Assert.False(link.Agent.IsClosed);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Closing_the_link_resets_its_streams_and_both_ends_report_how_it_closed(TransportKind kind)
    {
        var link = await MuxPair.StartAsync(kind);
        try
        {
            var client = await link.Server.OpenStreamAsync("db:1").WaitAsync(Timeouts.Default);
            var target = await link.AcceptedAsync();
            var blockedRead = target.ReadAsync(new byte[1]).AsTask();

            var closed = await link.Server.CloseAsync(CloseCodes.GoingAway, "node leaving").WaitAsync(Timeouts.Default);
            Assert.Equal(new LinkCloseInfo(CloseCodes.GoingAway, "node leaving", ByPeer: false), closed);
            Assert.Same(closed, await link.ServerRun.WaitAsync(Timeouts.Default));

            var agentSide = await link.AgentRun.WaitAsync(Timeouts.Default);
            Assert.True(agentSide.ByPeer);
            // A WebSocket carries the code; a plain TCP channel only ends.
            Assert.Equal(kind == TransportKind.WebSocket ? CloseCodes.GoingAway : CloseCodes.Normal, agentSide.Code);

            var reset = await Assert.ThrowsAsync<StreamResetException>(() => blockedRead.WaitAsync(Timeouts.Default));
            Assert.Equal(ResetCode.LinkLost, reset.Code);
            await Assert.ThrowsAsync<StreamResetException>(() => client.WriteAsync(new byte[1]).AsTask());
            var refused = await Assert.ThrowsAsync<StreamOpenException>(() => link.Server.OpenStreamAsync("db:1"));
            Assert.Equal(OpenErrorCode.GoingAway, refused.Code);
            Assert.Equal(0, link.Server.ActiveStreams);
            Assert.Equal(0, link.Agent.ActiveStreams);
        }
        finally
        {
            await link.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Cancelling_RunAsync_closes_the_link_with_going_away(TransportKind kind)
    {
        var (dialer, accepted) = await Loopback.TransportPairAsync(kind);
        var agent = new TunnelMux(dialer, MuxPair.AgentOptions);
        var server = new TunnelMux(accepted, MuxPair.ServerOptions);
        using var stop = new CancellationTokenSource();
        var agentRun = agent.RunAsync(_ => { });
        var serverRun = server.RunAsync(cancellationToken: stop.Token);

        await stop.CancelAsync();

        Assert.Equal(CloseCodes.GoingAway, (await serverRun.WaitAsync(Timeouts.Default)).Code);
        Assert.True((await agentRun.WaitAsync(Timeouts.Default)).ByPeer);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_peer_that_vanishes_ends_the_link_without_throwing(TransportKind kind)
    {
        await using var link = await MuxPair.StartAsync(kind);
        await using var client = await link.Server.OpenStreamAsync("db:1").WaitAsync(Timeouts.Default);
        await using var target = await link.AcceptedAsync();

        link.Agent.Abort("process killed");

        var info = await link.ServerRun.WaitAsync(Timeouts.Default);
        Assert.True(info.ByPeer);
        await link.AgentRun.WaitAsync(Timeouts.Default);
        var reset = await Assert.ThrowsAsync<StreamResetException>(() => client.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(ResetCode.LinkLost, reset.Code);
    }
}
