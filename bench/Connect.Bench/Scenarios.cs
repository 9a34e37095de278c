using System.Buffers.Binary;
using System.Diagnostics;

namespace Connect.Bench;

/// <summary>Sizes and bounds of one suite run; <c>--quick</c> shrinks everything for a smoke run.</summary>
public sealed record BenchConfig(bool Quick)
{
    public long BulkBytes { get; init; } = Quick ? 64L << 20 : 1L << 30;
    public int BulkRuns { get; init; } = Quick ? 1 : 3;
    public TimeSpan BulkTimeLimit { get; init; } = TimeSpan.FromSeconds(Quick ? 15 : 30);
    public int SmallRuns { get; init; } = Quick ? 1 : 2;
    public TimeSpan SmallDuration { get; init; } = TimeSpan.FromSeconds(Quick ? 1.5 : 4);
    public int SmallMaxRequests { get; init; } = Quick ? 20_000 : 200_000;
    public int[] Concurrency { get; init; } = [1, 16, 64];
    public int OpenWorkers { get; init; } = 8;
    public TimeSpan OpenDuration { get; init; } = TimeSpan.FromSeconds(Quick ? 1.5 : 4);
    public int OpenMax { get; init; } = Quick ? 5_000 : 50_000;
    public TimeSpan FairnessDuration { get; init; } = TimeSpan.FromSeconds(Quick ? 2 : 5);
    public int FairnessMaxRequests { get; init; } = 100_000;
    public int[] ScaleLinks { get; init; } = Quick ? [200, 1000] : [1000, 5000];
    public int StreamsForMemory { get; init; } = Quick ? 200 : 1000;
}

/// <summary>The processes behind a path, so that their CPU time can be charged to it.</summary>
public delegate double CpuMeter();

/// <summary>The load generators of every scenario. Each loop is bounded by a count and by time.</summary>
public sealed class Scenarios(BenchConfig config, Targets targets, Action<string> log)
{
    private static readonly byte[] Pattern = Enumerable.Range(0, 64 * 1024).Select(i => (byte)i).ToArray();

    // ----- bulk -----

    /// <summary>Downloads <see cref="BenchConfig.BulkBytes"/> split over <paramref name="streams"/> CONNECT tunnels (or TCP connections direct).</summary>
    public async Task<(double MiBps, bool Bounded)> BulkDownloadAsync(BenchPath path, int streams)
    {
        var per = config.BulkBytes / streams;
        long received = 0;
        using var limit = new CancellationTokenSource(config.BulkTimeLimit);
        var conns = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => Conn.OpenTunnelAsync(path, targets.SourcePort, limit.Token)));
        var watch = Stopwatch.StartNew();
        var bounded = false;
        try
        {
            await Task.WhenAll(conns.Select(async conn =>
            {
                var header = new byte[8];
                BinaryPrimitives.WriteInt64BigEndian(header, per);
                await conn.SendAsync(header, limit.Token);
                var buffer = new byte[64 * 1024];
                long got = 0;
                while (got < per)
                {
                    var read = await conn.ReceiveAsync(buffer, limit.Token);
                    if (read == 0)
                    {
                        throw new IOException($"source ended after {got} of {per} bytes");
                    }
                    got += read;
                    Interlocked.Add(ref received, read);
                }
                conn.ShutdownSend();
            }));
        }
        catch (OperationCanceledException)
        {
            bounded = true;
        }
        var seconds = watch.Elapsed.TotalSeconds;
        foreach (var conn in conns)
        {
            conn.Dispose();
        }
        return (Interlocked.Read(ref received) / seconds / (1 << 20), bounded);
    }

    /// <summary>Uploads <see cref="BenchConfig.BulkBytes"/> over <paramref name="streams"/> tunnels to the sink; timed until every sink acknowledged its count.</summary>
    public async Task<(double MiBps, bool Bounded)> BulkUploadAsync(BenchPath path, int streams)
    {
        var per = config.BulkBytes / streams;
        long sent = 0;
        using var limit = new CancellationTokenSource(config.BulkTimeLimit);
        var conns = await Task.WhenAll(Enumerable.Range(0, streams).Select(_ => Conn.OpenTunnelAsync(path, targets.SinkPort, limit.Token)));
        var watch = Stopwatch.StartNew();
        var bounded = false;
        try
        {
            await Task.WhenAll(conns.Select(async conn =>
            {
                var header = new byte[8];
                BinaryPrimitives.WriteInt64BigEndian(header, per);
                await conn.SendAsync(header, limit.Token);
                long left = per;
                while (left > 0)
                {
                    var take = (int)Math.Min(left, Pattern.Length);
                    await conn.SendAsync(Pattern.AsMemory(0, take), limit.Token);
                    left -= take;
                    Interlocked.Add(ref sent, take);
                }
                var answer = new byte[8];
                var got = 0;
                while (got < 8)
                {
                    var read = await conn.ReceiveAsync(answer.AsMemory(got), limit.Token);
                    if (read == 0)
                    {
                        throw new IOException("sink closed without its count");
                    }
                    got += read;
                }
                var count = BinaryPrimitives.ReadInt64BigEndian(answer);
                if (count != per)
                {
                    throw new IOException($"sink counted {count} of {per} bytes");
                }
            }));
        }
        catch (OperationCanceledException)
        {
            bounded = true;
        }
        var seconds = watch.Elapsed.TotalSeconds;
        foreach (var conn in conns)
        {
            conn.Dispose();
        }
        return (Interlocked.Read(ref sent) / seconds / (1 << 20), bounded);
    }

    /// <summary>One GET of <see cref="BenchConfig.BulkBytes"/>: absolute-form through a proxy, origin-form direct.</summary>
    public async Task<(double MiBps, bool Bounded)> AbsoluteDownloadAsync(BenchPath path)
    {
        using var limit = new CancellationTokenSource(config.BulkTimeLimit);
        using var conn = await Conn.DialAsync(path.ProxyPort ?? targets.HttpPort, limit.Token);
        var request = Requests.Get(path, targets.HttpPort, $"/bytes?n={config.BulkBytes}", absoluteForm: path.ProxyPort is not null);
        var watch = Stopwatch.StartNew();
        await conn.SendAsync(request, limit.Token);
        var (status, length) = await conn.ReadHeadAsync(limit.Token);
        if (status != 200)
        {
            throw new PathFailedException(status, $"GET via {path.Name} answered {status}");
        }
        long got = 0;
        var bounded = false;
        var buffer = new byte[64 * 1024];
        try
        {
            if (length < 0)
            {
                got = await conn.ReadBodyAsync(length, limit.Token);
            }
            else
            {
                while (got < length)
                {
                    var read = await conn.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - got)), limit.Token);
                    if (read == 0)
                    {
                        throw new IOException($"body ended after {got} bytes");
                    }
                    got += read;
                }
            }
        }
        catch (OperationCanceledException)
        {
            bounded = true;
        }
        return (got / watch.Elapsed.TotalSeconds / (1 << 20), bounded);
    }

    // ----- small requests -----

    public sealed record LatencyResult(double RequestsPerSecond, double P50Ms, double P99Ms, long Requests, int Errors);

    /// <summary>
    /// <paramref name="clients"/> keep-alive connections, each sending GET /small back to back: absolute-form
    /// (<paramref name="viaConnect"/> false) or origin-form inside one CONNECT tunnel per client.
    /// </summary>
    public Task<LatencyResult> SmallRequestsAsync(BenchPath path, int clients, bool viaConnect, TimeSpan duration, int maxRequests, CancellationToken outer = default) =>
        SmallRequestsCoreAsync(path, clients, viaConnect, duration, maxRequests, outer);

    private async Task<LatencyResult> SmallRequestsCoreAsync(BenchPath path, int clients, bool viaConnect, TimeSpan duration, int maxRequests, CancellationToken outer)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
        stop.CancelAfter(duration + TimeSpan.FromSeconds(30)); // a hard bound if a path hangs
        var absolute = !viaConnect && path.ProxyPort is not null;
        var request = Requests.Get(path, targets.HttpPort, "/small", absoluteForm: absolute);
        var conns = await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => viaConnect
            ? Conn.OpenTunnelAsync(path, targets.HttpPort, stop.Token)
            : Conn.DialAsync(path.ProxyPort ?? targets.HttpPort, stop.Token)));
        try
        {
            // Warm-up: a few requests per connection (opens the upstream streams of absolute-form too).
            await Task.WhenAll(conns.Select(async c =>
            {
                for (var i = 0; i < 5; i++)
                {
                    await RoundTripAsync(c, request, stop.Token);
                }
            }));
            long count = 0;
            var errors = 0;
            var latencies = new List<double>[clients];
            var freq = (double)Stopwatch.Frequency;
            var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * freq);
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(conns.Select(async (c, index) =>
            {
                var mine = latencies[index] = new List<double>(4096);
                while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref count) <= maxRequests)
                {
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        await RoundTripAsync(c, request, stop.Token);
                    }
                    catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or PathFailedException)
                    {
                        Interlocked.Increment(ref errors);
                        return;
                    }
                    mine.Add((Stopwatch.GetTimestamp() - started) * 1000.0 / freq);
                }
            }));
            var elapsed = watch.Elapsed.TotalSeconds;
            var all = latencies.Where(l => l is not null).SelectMany(l => l).ToArray();
            Array.Sort(all);
            return new LatencyResult(all.Length / elapsed, Stats.Percentile(all, 50), Stats.Percentile(all, 99), all.Length, errors);
        }
        finally
        {
            foreach (var c in conns)
            {
                c.Dispose();
            }
        }
    }

    private static async Task RoundTripAsync(Conn conn, byte[] request, CancellationToken cancellationToken)
    {
        await conn.SendAsync(request, cancellationToken);
        var (status, length) = await conn.ReadHeadAsync(cancellationToken);
        if (status != 200)
        {
            throw new PathFailedException(status, $"GET /small answered {status}");
        }
        var body = await conn.ReadBodyAsync(length, cancellationToken);
        if (body != Targets.SmallSize)
        {
            throw new IOException($"body of {body} bytes");
        }
    }

    // ----- stream open rate -----

    /// <summary>New tunnels per second: CONNECT (or a TCP dial direct) to the echo target, one byte there and back, close.</summary>
    public async Task<LatencyResult> OpenRateAsync(BenchPath path)
    {
        long count = 0;
        var errors = 0;
        var freq = (double)Stopwatch.Frequency;
        var latencies = new List<double>[config.OpenWorkers];
        using var hard = new CancellationTokenSource(config.OpenDuration + TimeSpan.FromSeconds(30));
        var deadline = Stopwatch.GetTimestamp() + (long)(config.OpenDuration.TotalSeconds * freq);
        var watch = Stopwatch.StartNew();
        var one = new byte[] { 42 };
        await Task.WhenAll(Enumerable.Range(0, config.OpenWorkers).Select(async index =>
        {
            var mine = latencies[index] = new List<double>(4096);
            var back = new byte[1];
            while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref count) <= config.OpenMax)
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    using var conn = await Conn.OpenTunnelAsync(path, targets.EchoPort, hard.Token);
                    await conn.SendAsync(one, hard.Token);
                    if (await conn.ReceiveAsync(back, hard.Token) != 1)
                    {
                        throw new IOException("echo closed");
                    }
                    conn.ShutdownSend();
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or PathFailedException)
                {
                    if (Interlocked.Increment(ref errors) > 100)
                    {
                        return;
                    }
                    continue;
                }
                mine.Add((Stopwatch.GetTimestamp() - started) * 1000.0 / freq);
            }
        }));
        var elapsed = watch.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        return new LatencyResult(all.Length / elapsed, Stats.Percentile(all, 50), Stats.Percentile(all, 99), all.Length, errors);
    }

    // ----- fairness -----

    /// <summary>p50/p99 of one keep-alive client's small requests inside CONNECT while a bulk download runs on the same path (the same tunnel for Connect).</summary>
    public async Task<(LatencyResult Loaded, double BulkMiBps)> FairnessAsync(BenchPath path)
    {
        using var stopBulk = new CancellationTokenSource(config.FairnessDuration + TimeSpan.FromSeconds(30));
        using var bulk = await Conn.OpenTunnelAsync(path, targets.SourcePort, stopBulk.Token);
        var header = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(header, long.MaxValue / 2);
        await bulk.SendAsync(header, stopBulk.Token);
        long received = 0;
        var bulkTask = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var read = await bulk.ReceiveAsync(buffer, stopBulk.Token);
                    if (read == 0)
                    {
                        return;
                    }
                    Interlocked.Add(ref received, read);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // Stopped at the end of the measurement.
            }
        });
        // Let the bulk transfer reach its steady state (windows full) before measuring.
        await Task.Delay(500);
        var before = Interlocked.Read(ref received);
        var watch = Stopwatch.StartNew();
        var loaded = await SmallRequestsAsync(path, 1, viaConnect: true, config.FairnessDuration, config.FairnessMaxRequests);
        var bulkRate = (Interlocked.Read(ref received) - before) / watch.Elapsed.TotalSeconds / (1 << 20);
        await stopBulk.CancelAsync();
        bulk.Dispose();
        await bulkTask;
        return (loaded, bulkRate);
    }

    public void Log(string line) => log(line);
}
