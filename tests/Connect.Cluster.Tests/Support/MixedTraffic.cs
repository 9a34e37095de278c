using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Connect.Testing;

namespace Connect.Cluster.Tests.Support;

/// <summary>
/// Continuous client load through one proxy port (a load balancer's): small absolute-form GETs, 64 KiB CONNECT echoes
/// and 24 MiB CONNECT downloads read at ~8 MiB/s (so they span drains), over the sessions <c>{prefix}-0..n</c>. Every
/// failure is recorded with what failed; every body is checked byte for byte. Bounded in count and time.
/// </summary>
public sealed class MixedTraffic
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _workers = [];
    private readonly TimeSpan _bound;

    public MixedTraffic(int proxyPort, TestTargets targets, string sessionPrefix, int sessions, TimeSpan bound)
    {
        _bound = bound;
        for (var w = 0; w < 3; w++)
        {
            var worker = w;
            _workers.Add(RunAsync("small GET", worker, sessionPrefix, sessions, async session =>
            {
                using var client = ProxyClient.Http(proxyPort, session);
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
            _workers.Add(RunAsync("CONNECT echo", worker, sessionPrefix, sessions, async session =>
            {
                using var tunnel = await ProxyClient.ConnectAsync(proxyPort, $"127.0.0.1:{targets.EchoPort}", ProxyClient.Basic(session));
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
            _workers.Add(RunAsync("long download", w, sessionPrefix, sessions, async session =>
            {
                const long size = 24L * 1024 * 1024;
                using var tunnel = await ProxyClient.ConnectAsync(proxyPort, $"127.0.0.1:{targets.SourcePort}", ProxyClient.Basic(session));
                if (tunnel.Status != 200)
                {
                    throw new InvalidDataException($"CONNECT answered {tunnel.Status}: {tunnel.Body}");
                }
                await tunnel.Stream.WriteAsync(Encoding.ASCII.GetBytes($"{size}\n"));
                var received = await DeterministicBytes.VerifyAsync(new ThrottledStream(tunnel.Stream, 8 * 1024 * 1024), CancellationToken.None);
                if (received != size)
                {
                    throw new InvalidDataException($"download ended after {received} of {size} bytes");
                }
            }));
        }
    }

    public ConcurrentQueue<string> Failures { get; } = new();

    public ConcurrentDictionary<string, int> Counts { get; } = new();

    public static IReadOnlyList<string> Kinds { get; } = ["small GET", "CONNECT echo", "long download"];

    public int Completed => Counts.Values.Sum();

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers).WaitAsync(_bound);
    }

    public string Summary() => string.Join(", ", Counts.OrderBy(c => c.Key).Select(c => $"{c.Key}: {c.Value}"));

    private Task RunAsync(string kind, int worker, string prefix, int sessions, Func<string, Task> operation) => Task.Run(async () =>
    {
        var started = Stopwatch.StartNew();
        for (var i = 0; i < 100_000 && !_stop.IsCancellationRequested && started.Elapsed < _bound; i++)
        {
            var session = $"{prefix}-{(worker * 7 + i) % sessions}";
            try
            {
                await operation(session).WaitAsync(TimeSpan.FromSeconds(60));
                Counts.AddOrUpdate(kind, 1, (_, c) => c + 1);
            }
            catch (Exception e)
            {
                Failures.Enqueue($"{kind} for {session}: {e.GetType().Name}: {e.Message}");
            }
        }
    });

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
