using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Connect.Proxy;

/// <summary>The proxy's instruments on the "Connect.Proxy" meter (visible to dotnet-counters and the /metrics endpoint).</summary>
public sealed class ProxyMetrics : IDisposable
{
    public const string MeterName = "Connect.Proxy";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _duration;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Counter<long> _bytes;

    public ProxyMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("connect.proxy.requests", "{request}", "Proxy requests by kind (absolute, connect) and outcome.");
        _failures = _meter.CreateCounter<long>("connect.proxy.failures", "{request}", "Failed proxy requests by reason.");
        _duration = _meter.CreateHistogram<double>("connect.proxy.request.duration", "s", "Time from request head to the end of the response or tunnel.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _inFlight = _meter.CreateUpDownCounter<long>("connect.proxy.in_flight", "{request}", "Proxy requests and CONNECT tunnels in progress.");
        _bytes = _meter.CreateCounter<long>("connect.proxy.bytes", "By", "Body and tunnel bytes through the proxy by direction (up = to the target).");
    }

    public void Started() => _inFlight.Add(1);

    public void Finished(string kind, ProxyError error, TimeSpan elapsed)
    {
        _inFlight.Add(-1);
        var outcome = error == ProxyError.None ? "ok" : "error";
        _requests.Add(1, new TagList { { "kind", kind }, { "outcome", outcome } });
        _duration.Record(elapsed.TotalSeconds, new TagList { { "kind", kind }, { "outcome", outcome } });
        if (error != ProxyError.None)
        {
            _failures.Add(1, new KeyValuePair<string, object?>("reason", error.ToString()));
        }
    }

    public void Bytes(long up, long down)
    {
        if (up > 0)
        {
            _bytes.Add(up, new KeyValuePair<string, object?>("direction", "up"));
        }
        if (down > 0)
        {
            _bytes.Add(down, new KeyValuePair<string, object?>("direction", "down"));
        }
    }

    public void Dispose() => _meter.Dispose();
}
