using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Connect.Bench.Sim;

/// <summary>
/// Proxy traffic at a fixed, modest rate, as the device farm sends it: each request a fresh TCP connection to a
/// node's proxy port with <c>Proxy-Authorization: Basic base64(session:token)</c> sent up front (RFC 9110 section
/// 11.7.2; the farm's browsers send it after the first 407). An absolute-form <c>GET http://app.internal/...</c>, or a
/// <c>CONNECT app.internal:80</c> followed by a GET inside the tunnel. The simulated agent's target answers
/// <c>ok SESSION</c>, so a request counts as ok only with status 200 and that exact body: a fast error page is a
/// failure, with its reason. Bounded: requests stop after <see cref="ProxyLoadOptions.Duration"/>, each has a timeout.
/// </summary>
public sealed class ProxyLoad
{
    private const int MaxResponseBytes = 64 * 1024;
    private const string TargetHost = "app.internal";

    private readonly ProxyLoadOptions _options;
    private const int MaxFailuresKept = 10_000;

    private readonly ConcurrentDictionary<string, long> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<ProxyLoadFailure> _failedRequests = new();
    private long _sent;
    private long _ok;
    private long _failed;
    private long _skipped;
    private int _inFlight;
    private long _slowestOkMs;

    public ProxyLoad(ProxyLoadOptions options)
    {
        if (options.Proxies.Count == 0 || options.Sessions.Count == 0)
        {
            throw new ArgumentException("give at least one proxy and one session", nameof(options));
        }
        if (options.Rate <= 0 || options.MaxInFlight <= 0)
        {
            throw new ArgumentException("rate and in-flight bound must be positive", nameof(options));
        }
        if (options.Mode is not ("get" or "connect" or "both"))
        {
            throw new ArgumentException($"mode must be get, connect or both, not '{options.Mode}'", nameof(options));
        }
        _options = options;
    }

    public long Sent => Interlocked.Read(ref _sent);

    public long Ok => Interlocked.Read(ref _ok);

    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Requests that were due while <see cref="ProxyLoadOptions.MaxInFlight"/> were open: not sent.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    public int InFlight => Volatile.Read(ref _inFlight);

    public long SlowestOkMilliseconds => Interlocked.Read(ref _slowestOkMs);

    /// <summary>Failure reasons and how often each was seen.</summary>
    public IReadOnlyDictionary<string, long> Failures => new SortedDictionary<string, long>(_failures, StringComparer.Ordinal);

    /// <summary>Each failed request (the first 10,000) with its start time: which failed requests started after an event.</summary>
    public IReadOnlyList<ProxyLoadFailure> FailedRequests => [.. _failedRequests];

    public string Summary() =>
        $"sent={Sent} ok={Ok} failed={Failed} skipped={Skipped} inflight={InFlight} slowest-ok={SlowestOkMilliseconds}ms";

    /// <summary>Sends at the fixed rate until the duration ends or <paramref name="cancellationToken"/> fires, then waits for the requests in flight.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var pending = new List<Task>();
        var interval = TimeSpan.FromSeconds(1 / _options.Rate);
        var pick = new Random(16);
        for (long i = 0; clock.Elapsed < _options.Duration && !cancellationToken.IsCancellationRequested; i++)
        {
            var due = interval * i;
            if (due > clock.Elapsed)
            {
                try
                {
                    await Task.Delay(due - clock.Elapsed, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            if (Volatile.Read(ref _inFlight) >= _options.MaxInFlight)
            {
                Interlocked.Increment(ref _skipped);
                continue;
            }
            // Sessions in turn; the proxy and (in "both") the kind drawn at random, so that neither follows the
            // session's parity (with two proxies and an even session count, i mod 2 would tie each session to one).
            var proxy = _options.Proxies[pick.Next(_options.Proxies.Count)];
            var session = _options.Sessions[(int)(i % _options.Sessions.Count)];
            var connect = _options.Mode == "connect" || (_options.Mode == "both" && pick.Next(2) == 1);
            Interlocked.Increment(ref _inFlight);
            Interlocked.Increment(ref _sent);
            pending.Add(Task.Run(() => OneAsync(proxy, session, connect, i)));
            pending.RemoveAll(t => t.IsCompleted);
        }
        // Each request ends within its own timeout; the extra bound only guards against a bug here.
        await Task.WhenAll(pending).WaitAsync(_options.RequestTimeout + TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    private async Task OneAsync(string proxy, string session, bool connect, long number)
    {
        var started = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        using var timeout = new CancellationTokenSource(_options.RequestTimeout);
        try
        {
            var failure = await RequestAsync(proxy, session, connect, number, timeout.Token).ConfigureAwait(false);
            if (failure is null)
            {
                Interlocked.Increment(ref _ok);
                var ms = (long)started.Elapsed.TotalMilliseconds;
                long seen;
                while (ms > (seen = Interlocked.Read(ref _slowestOkMs)) && Interlocked.CompareExchange(ref _slowestOkMs, ms, seen) != seen)
                {
                }
                return;
            }
            Fail(startedAt, connect, failure);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Fail(startedAt, connect, $"no complete answer within {_options.RequestTimeout.TotalSeconds:0} s");
        }
        catch (SocketException e)
        {
            Fail(startedAt, connect, $"socket: {e.SocketErrorCode}");
        }
        catch (IOException e)
        {
            Fail(startedAt, connect, $"io: {(e.InnerException as SocketException)?.SocketErrorCode.ToString() ?? e.Message}");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Counted, never thrown: one odd failure must not end the run or hide the others.
            Fail(startedAt, connect, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private void Fail(DateTimeOffset startedAt, bool connect, string reason)
    {
        if (Interlocked.Increment(ref _failed) <= MaxFailuresKept)
        {
            _failedRequests.Enqueue(new ProxyLoadFailure(startedAt, connect, reason));
        }
        _failures.AddOrUpdate($"{(connect ? "CONNECT" : "GET")}: {reason}", 1, (_, n) => n + 1);
    }

    /// <summary>One request on a fresh connection; null when it was answered as it should be, else why not.</summary>
    private async Task<string?> RequestAsync(string proxy, string session, bool connect, long number, CancellationToken cancellationToken)
    {
        var colon = proxy.LastIndexOf(':');
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy[..colon], int.Parse(proxy[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var auth = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{session}:{_options.Token}"));
        var path = $"/load/{number}";
        if (connect)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"CONNECT {TargetHost}:80 HTTP/1.1\r\nHost: {TargetHost}:80\r\nProxy-Authorization: {auth}\r\n\r\n"), cancellationToken).ConfigureAwait(false);
            var head = await ReadHeadAsync(stream, cancellationToken).ConfigureAwait(false);
            if (head is null)
            {
                return "closed before the CONNECT answer";
            }
            if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            {
                return "CONNECT answered " + FirstLine(head);
            }
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {TargetHost}\r\nConnection: close\r\n\r\n"), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET http://{TargetHost}{path} HTTP/1.1\r\nHost: {TargetHost}\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n"), cancellationToken).ConfigureAwait(false);
        }
        var response = await ReadToEndAsync(stream, cancellationToken).ConfigureAwait(false);
        if (response.Length == 0)
        {
            return "closed without an answer";
        }
        var split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var status = FirstLine(response);
        if (!status.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
        {
            var body = split < 0 ? "" : response[(split + 4)..];
            return $"{status}: {body.Split('\n')[0].Trim()}";
        }
        if (split < 0 || !response[(split + 4)..].StartsWith($"ok {session}\n", StringComparison.Ordinal))
        {
            return "200 with a body that is not the session's answer";
        }
        return null;
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOf('\r');
        var line = end < 0 ? text : text[..end];
        return line.Length > 120 ? line[..120] : line;
    }

    /// <summary>Reads up to the end of a response head (byte by byte, so nothing of the tunnel is consumed).</summary>
    private static async Task<string?> ReadHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (head.Length < MaxResponseBytes)
        {
            if (await stream.ReadAsync(one, cancellationToken).ConfigureAwait(false) == 0)
            {
                return null;
            }
            head.Append((char)one[0]);
            if (head.Length >= 4 && head[^1] == '\n' && head[^2] == '\r' && head[^3] == '\n' && head[^4] == '\r')
            {
                return head.ToString();
            }
        }
        return head.ToString();
    }

    /// <summary>Reads until the peer closes (every request says <c>Connection: close</c>), bounded in size.</summary>
    private static async Task<string> ReadToEndAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxResponseBytes];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
        {
            total += read;
        }
        return Encoding.ASCII.GetString(buffer, 0, total);
    }
}
