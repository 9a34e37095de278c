using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Connect.EndToEnd.Tests.Support;
using Xunit.Abstractions;

namespace Connect.Cluster.Tests;

/// <summary>
/// The deploy the product exists for: every node of a 3-node cluster is drained, leaves, and starts again while
/// 20 sessions carry continuous traffic through all nodes. Zero failed requests, every byte verified.
/// </summary>
public sealed class RollingRestartTests(ITestOutputHelper output)
{
    private const int Sessions = 20;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    private static readonly Dictionary<string, string?> DrainSettings = new()
    {
        ["Connect:Drain:Deadline"] = "00:00:40",
        ["Connect:Drain:ProxyGrace"] = "00:00:01.500",
        ["Connect:Sessions:HoldTimeout"] = "00:00:15",
    };

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>What a load balancer does: sends new connections only to nodes whose /readyz said 200 a moment ago.</summary>
    private sealed class LoadBalancer : IAsyncDisposable
    {
        private readonly TestNode?[] _nodes;
        private readonly bool[] _ready;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _probe;
        private int _next;

        public LoadBalancer(TestNode?[] nodes)
        {
            _nodes = nodes;
            _ready = new bool[nodes.Length];
            _probe = Task.Run(ProbeAsync);
        }

        public void Replace(int index, TestNode? node)
        {
            lock (_ready)
            {
                _nodes[index] = node;
                _ready[index] = false;
            }
        }

        private async Task ProbeAsync()
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            while (!_stop.IsCancellationRequested)
            {
                for (var i = 0; i < _nodes.Length; i++)
                {
                    var node = _nodes[i];
                    var ready = false;
                    if (node is not null)
                    {
                        try
                        {
                            ready = (await http.GetAsync($"http://127.0.0.1:{node.AdminPort}/readyz")).StatusCode == HttpStatusCode.OK;
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or ObjectDisposedException)
                        {
                        }
                    }
                    lock (_ready)
                    {
                        if (ReferenceEquals(_nodes[i], node))
                        {
                            _ready[i] = ready;
                        }
                    }
                }
                try
                {
                    await Task.Delay(100, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }

        /// <summary>The proxy port of the next ready node.</summary>
        public int PickProxyPort()
        {
            lock (_ready)
            {
                for (var i = 0; i < _nodes.Length; i++)
                {
                    var index = (_next++ & int.MaxValue) % _nodes.Length;
                    if (_ready[index] && _nodes[index] is { } node)
                    {
                        return node.ProxyPort;
                    }
                }
            }
            throw new InvalidOperationException("no node is ready");
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _probe;
        }
    }

    [Fact]
    public async Task Every_node_restarts_in_turn_under_traffic_with_zero_failed_requests_and_every_byte_verified()
    {
        await using var targets = await TestTargets.StartAsync();
        var tunnelPorts = Enumerable.Range(0, 3).Select(_ => FreePort()).ToArray();
        var proxyPorts = Enumerable.Range(0, 3).Select(_ => FreePort()).ToArray();
        var nodes = new TestNode?[3];
        nodes[0] = await TestNode.StartAsync(settings: DrainSettings, tunnelPort: tunnelPorts[0], proxyPort: proxyPorts[0]);
        nodes[1] = await TestNode.StartAsync(seeds: [nodes[0]!.Address], settings: DrainSettings, tunnelPort: tunnelPorts[1], proxyPort: proxyPorts[1]);
        nodes[2] = await TestNode.StartAsync(seeds: [nodes[0]!.Address], settings: DrainSettings, tunnelPort: tunnelPorts[2], proxyPort: proxyPorts[2]);
        await Task.WhenAll(nodes.Select(n => n!.WaitMembersUpAsync(3, Bound)));

        var servers = tunnelPorts.Select(p => new Uri($"ws://127.0.0.1:{p}/v1/tunnel")).ToArray();
        var agents = new List<TestAgent>();
        try
        {
            for (var i = 0; i < Sessions; i++)
            {
                // Spread the agents' first links over the nodes.
                agents.Add(await TestAgent.StartAsync($"roll-{i}", servers.Skip(i % 3).Concat(servers.Take(i % 3))));
            }
            await using var balancer = new LoadBalancer(nodes);
            await Eventually.UntilAsync(() => { try { balancer.PickProxyPort(); return true; } catch (InvalidOperationException) { return false; } }, "a ready node behind the load balancer", Bound);

            using var stopTraffic = new CancellationTokenSource();
            var failures = new ConcurrentQueue<string>();
            var counts = new ConcurrentDictionary<string, int>();
            var workers = new List<Task>();
            for (var w = 0; w < 3; w++)
            {
                var worker = w;
                workers.Add(RunAsync("small GET", worker, stopTraffic.Token, failures, counts, async session =>
                {
                    using var client = ProxyClient.Http(balancer.PickProxyPort(), session);
                    var text = await client.GetStringAsync($"http://localhost:{targets.HttpPort}/hello");
                    if (text != "hello from the private app")
                    {
                        throw new InvalidDataException($"unexpected body '{text}'");
                    }
                }));
            }
            for (var w = 0; w < 2; w++)
            {
                var worker = w;
                workers.Add(RunAsync("CONNECT echo", worker, stopTraffic.Token, failures, counts, async session =>
                {
                    using var tunnel = await ProxyClient.ConnectAsync(balancer.PickProxyPort(), $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic(session));
                    if (tunnel.Status != 200)
                    {
                        throw new InvalidDataException($"CONNECT answered {tunnel.Status}: {tunnel.Body}");
                    }
                    var payload = new byte[64 * 1024];
                    DeterministicBytes.Fill(payload, worker * 7);
                    var write = tunnel.Stream.WriteAsync(payload).AsTask();
                    var echoed = new byte[payload.Length];
                    await tunnel.Stream.ReadExactlyAsync(echoed);
                    await write;
                    if (!echoed.AsSpan().SequenceEqual(payload))
                    {
                        throw new InvalidDataException("echo differs");
                    }
                }));
            }
            for (var w = 0; w < 2; w++)
            {
                workers.Add(RunAsync("long download", w, stopTraffic.Token, failures, counts, async session =>
                {
                    const long size = 24L * 1024 * 1024;
                    using var tunnel = await ProxyClient.ConnectAsync(balancer.PickProxyPort(), $"127.0.0.1:{targets.SourcePort}", ProxyClient.Basic(session));
                    if (tunnel.Status != 200)
                    {
                        throw new InvalidDataException($"CONNECT answered {tunnel.Status}: {tunnel.Body}");
                    }
                    await tunnel.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{size}\n"));
                    // A slow reader (~8 MiB/s), so downloads span a node's drain.
                    var received = await DeterministicBytes.VerifyAsync(new ThrottledStream(tunnel.Stream, 8 * 1024 * 1024), CancellationToken.None);
                    if (received != size)
                    {
                        throw new InvalidDataException($"download ended after {received} of {size} bytes");
                    }
                }));
            }

            for (var i = 0; i < 3; i++)
            {
                var old = nodes[i]!;
                var survivor = nodes[(i + 1) % 3]!;
                var clock = Stopwatch.StartNew();
                await old.StopAsync(); // SIGTERM's path: drain (GOAWAY, grace, wait), then leave, then stop
                var drainedIn = clock.Elapsed;
                balancer.Replace(i, null);
                await old.DisposeAsync();
                var restarted = await TestNode.StartAsync(seeds: [survivor.Address], settings: DrainSettings, tunnelPort: tunnelPorts[i], proxyPort: proxyPorts[i]);
                nodes[i] = restarted;
                balancer.Replace(i, restarted);
                await restarted.WaitMembersUpAsync(3, Bound);
                output.WriteLine($"node {i + 1}: stopped (drain + leave) in {drainedIn.TotalSeconds:0.0} s, back and Up after {clock.Elapsed.TotalSeconds:0.0} s");
            }

            await stopTraffic.CancelAsync();
            await Task.WhenAll(workers).WaitAsync(Bound);
            output.WriteLine(string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key}: {c.Value}")));
            foreach (var failure in failures.Take(20))
            {
                output.WriteLine(failure);
            }
            Assert.Empty(failures);
            Assert.All(new[] { "small GET", "CONNECT echo", "long download" }, kind => Assert.True(counts.GetValueOrDefault(kind) > 0, $"no {kind} completed"));
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
            foreach (var node in nodes.Reverse())
            {
                if (node is not null)
                {
                    await node.DisposeAsync();
                }
            }
        }
    }

    private static async Task RunAsync(string kind, int worker, CancellationToken stop, ConcurrentQueue<string> failures, ConcurrentDictionary<string, int> counts, Func<string, Task> operation)
    {
        var started = Stopwatch.StartNew();
        for (var i = 0; i < 100_000 && !stop.IsCancellationRequested && started.Elapsed < Bound; i++)
        {
            var session = $"roll-{(worker * 7 + i) % Sessions}";
            try
            {
                await operation(session).WaitAsync(TimeSpan.FromSeconds(60));
                counts.AddOrUpdate(kind, 1, (_, c) => c + 1);
            }
            catch (Exception e)
            {
                failures.Enqueue($"{kind} for {session}: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>Reads no faster than a given rate, to keep a download open across a drain.</summary>
    private sealed class ThrottledStream(Stream inner, int bytesPerSecond) : Stream
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var due = TimeSpan.FromSeconds((double)_read / bytesPerSecond) - _clock.Elapsed;
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due, cancellationToken);
            }
            var read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, 64 * 1024)], cancellationToken);
            _read += read;
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
