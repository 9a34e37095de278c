using System.Net;
using System.Net.Sockets;

namespace Connect.Cluster.Tests.Support;

/// <summary>
/// A TCP load balancer in front of the nodes' proxy ports, as a cloud or Kubernetes one behaves: it probes each
/// backend's <c>/readyz</c> every <see cref="ProbePeriod"/>, takes a backend out only after
/// <see cref="FailureThreshold"/> failed probes in a row (so it keeps sending to a draining node for up to period x
/// threshold), puts it back after one good probe, sends each new connection to the next backend it believes ready, and
/// retries on the next backend only when the connect is refused (nothing was sent yet). Bytes are then piped as they are.
/// </summary>
public sealed class LoadBalancerEmulator : IAsyncDisposable
{
    private readonly object _sync = new();
    private readonly List<Backend> _backends = [];
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Task _probing;
    private int _next;
    private long _refusedRetries;
    private long _noBackend;

    public LoadBalancerEmulator(TimeSpan probePeriod, int failureThreshold)
    {
        ProbePeriod = probePeriod;
        FailureThreshold = failureThreshold;
        _listener.Start(512);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptLoopAsync);
        _probing = Task.Run(ProbeLoopAsync);
    }

    public TimeSpan ProbePeriod { get; }

    public int FailureThreshold { get; }

    /// <summary>The port clients use as their proxy.</summary>
    public int Port { get; }

    /// <summary>Connects that were refused and retried on another backend.</summary>
    public long RefusedRetries => Interlocked.Read(ref _refusedRetries);

    /// <summary>Client connections closed because no backend was believed ready or every one refused.</summary>
    public long NoBackend => Interlocked.Read(ref _noBackend);

    private sealed class Backend(int proxyPort, int adminPort)
    {
        public int ProxyPort { get; } = proxyPort;

        public int AdminPort { get; } = adminPort;

        public bool Ready { get; set; }

        public int Failures { get; set; }
    }

    /// <summary>Adds a backend; like a real target group, it gets traffic only after its first good probe.</summary>
    public void Add(int proxyPort, int adminPort)
    {
        lock (_sync)
        {
            _backends.Add(new Backend(proxyPort, adminPort));
        }
    }

    /// <summary>Deregisters a backend (the pipeline removes a terminated node).</summary>
    public void Remove(int proxyPort)
    {
        lock (_sync)
        {
            _backends.RemoveAll(b => b.ProxyPort == proxyPort);
        }
    }

    /// <summary>Proxy ports the balancer currently believes ready.</summary>
    public IReadOnlyList<int> ReadyPorts()
    {
        lock (_sync)
        {
            return _backends.Where(b => b.Ready).Select(b => b.ProxyPort).ToList();
        }
    }

    private async Task ProbeLoopAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        while (!_stop.IsCancellationRequested)
        {
            Backend[] backends;
            lock (_sync)
            {
                backends = _backends.ToArray();
            }
            await Task.WhenAll(backends.Select(async backend =>
            {
                bool ok;
                try
                {
                    ok = (await http.GetAsync($"http://127.0.0.1:{backend.AdminPort}/readyz", _stop.Token)).StatusCode == HttpStatusCode.OK;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or OperationCanceledException)
                {
                    ok = false;
                }
                lock (_sync)
                {
                    if (ok)
                    {
                        backend.Failures = 0;
                        backend.Ready = true;
                    }
                    else if (++backend.Failures >= FailureThreshold)
                    {
                        backend.Ready = false;
                    }
                }
            }));
            try
            {
                await Task.Delay(ProbePeriod, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        client.NoDelay = true;
        using (client)
        {
            var backend = await ConnectBackendAsync();
            if (backend is null)
            {
                Interlocked.Increment(ref _noBackend);
                return;
            }
            using (backend)
            {
                await Task.WhenAll(PipeAsync(client, backend), PipeAsync(backend, client));
            }
        }
    }

    /// <summary>Next ready backend in turn; a refused connect moves on to the next one (nothing was sent, so that is safe).</summary>
    private async Task<Socket?> ConnectBackendAsync()
    {
        int[] ports;
        lock (_sync)
        {
            var ready = _backends.Where(b => b.Ready).Select(b => b.ProxyPort).ToArray();
            var start = ready.Length == 0 ? 0 : (_next++ & int.MaxValue) % ready.Length;
            ports = ready.Skip(start).Concat(ready.Take(start)).ToArray();
        }
        foreach (var port in ports)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(IPAddress.Loopback, port);
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                socket.Dispose();
                Interlocked.Increment(ref _refusedRetries);
            }
        }
        return null;
    }

    /// <summary>Copies one direction; on the end of it, half-closes the other side (an orderly FIN travels on), on an error resets both.</summary>
    private static async Task PipeAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                var sent = 0;
                while (sent < read)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Reset(from);
            Reset(to);
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await Task.WhenAll(_accepting, _probing).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
