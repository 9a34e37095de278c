using System.Diagnostics.Metrics;

namespace Connect.Proxy;

/// <summary>
/// One counter, <c>connect.limits.hit</c> on the "Connect.Limits" meter, tagged with the limit that was hit
/// (<see cref="Limits"/>), so an operator sees every refusal a limit caused without reading logs.
/// </summary>
public sealed class LimitMetrics : IDisposable
{
    public const string MeterName = "Connect.Limits";

    private readonly Meter _meter;
    private readonly Counter<long> _hits;
    private readonly Dictionary<string, long> _totals = new(StringComparer.Ordinal);

    public LimitMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _hits = _meter.CreateCounter<long>("connect.limits.hit", "{event}", "Requests, streams and links refused or ended because a configured limit was reached, by limit.");
    }

    /// <summary>Counts one hit of <paramref name="limit"/> (one of the <see cref="Limits"/> names).</summary>
    public void Hit(string limit)
    {
        _hits.Add(1, new KeyValuePair<string, object?>("limit", limit));
        lock (_totals)
        {
            _totals[limit] = _totals.GetValueOrDefault(limit) + 1;
        }
    }

    /// <summary>How often <paramref name="limit"/> was hit since start (for the admin view and tests).</summary>
    public long Total(string limit)
    {
        lock (_totals)
        {
            return _totals.GetValueOrDefault(limit);
        }
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>The names of the limits as they appear in the <c>limit</c> tag.</summary>
public static class Limits
{
    public const string LinksPerSession = "links_per_session";
    public const string StreamsPerSession = "streams_per_session";
    public const string RequestLine = "request_line";
    public const string RequestHead = "request_head";
    public const string RequestHeadTimeout = "request_head_timeout";
    public const string StreamIdle = "stream_idle";
    public const string DestinationPolicy = "destination_policy";
}
