using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Connect.Proxy;

namespace Connect.Host.Metrics;

/// <summary>
/// Renders this node's <see cref="System.Diagnostics.Metrics"/> instruments (every meter whose name starts with
/// "Connect.": "Connect.Proxy", "Connect.Limits", "Connect.Node", and any added later) in
/// the Prometheus text exposition format (version 0.0.4) for <c>/metrics</c>, with a <see cref="MeterListener"/>:
/// counters become <c>_total</c>, histograms cumulative <c>_bucket{le=..}</c> with <c>_sum</c> and <c>_count</c>,
/// gauges their last observed value. Only meters created by this node's <see cref="IMeterFactory"/> are listened
/// to, so several nodes in one process (the tests) keep their numbers apart.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>Meters are picked by prefix, not by a list, so a meter added to the node cannot be forgotten here.</summary>
    public const string MeterPrefix = "Connect.";

    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener = new();
    private readonly object _scrapeLock = new();
    private readonly Dictionary<Instrument, Series> _series = [];

    public PrometheusExporter(IMeterFactory factory, ProxyMetrics proxy, LimitMetrics limits, NodeMetrics node)
    {
        // The metric classes are taken so that their meters exist (and their families show in the first scrape)
        // before the listener starts; a meter created later is still picked up by its prefix.
        _ = proxy;
        _ = limits;
        _ = node;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name.StartsWith(MeterPrefix, StringComparison.Ordinal) && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                lock (_series)
                {
                    _series[instrument] = new Series(instrument);
                }
                listener.EnableMeasurementEvents(instrument, _series[instrument]);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>The exposition text: observable instruments are read now; counters and histograms hold their totals.</summary>
    public string Scrape()
    {
        lock (_scrapeLock)
        {
            List<Series> all;
            lock (_series)
            {
                all = _series.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
            }
            foreach (var series in all.Where(s => s.IsObservable))
            {
                series.ClearObserved();
            }
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach (var series in all)
            {
                series.Write(text);
            }
            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private sealed class Series
    {
        private readonly Instrument _instrument;
        private readonly Dictionary<string, double> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Histogram> _histograms = new(StringComparer.Ordinal);
        private readonly double[] _buckets;

        public Series(Instrument instrument)
        {
            _instrument = instrument;
            Kind = instrument switch
            {
                Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => "counter",
                Histogram<double> or Histogram<long> or Histogram<int> => "histogram",
                _ => "gauge",
            };
            IsObservable = instrument.IsObservable;
            _buckets = (instrument as Histogram<double>)?.Advice?.HistogramBucketBoundaries?.ToArray() ?? DefaultBuckets;
            Name = PrometheusName(instrument, Kind);
        }

        public string Name { get; }

        public string Kind { get; }

        public bool IsObservable { get; }

        public void ClearObserved()
        {
            lock (_values)
            {
                _values.Clear();
            }
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = Labels(tags);
            lock (_values)
            {
                if (Kind == "histogram")
                {
                    if (!_histograms.TryGetValue(labels, out var histogram))
                    {
                        _histograms[labels] = histogram = new Histogram(new long[_buckets.Length + 1]);
                    }
                    var index = Array.FindIndex(_buckets, b => value <= b);
                    histogram.Counts[index < 0 ? _buckets.Length : index]++;
                    histogram.Sum += value;
                    histogram.Count++;
                }
                else if (IsObservable || _instrument is not (Counter<long> or Counter<int> or Counter<double> or UpDownCounter<long> or UpDownCounter<int> or UpDownCounter<double>))
                {
                    _values[labels] = value; // observed values are totals (counters) or current values (gauges)
                }
                else
                {
                    _values[labels] = _values.GetValueOrDefault(labels) + value;
                }
            }
        }

        public void Write(StringBuilder text)
        {
            lock (_values)
            {
                // A family with no samples yet (a counter never hit, a gauge before the actor system runs) still
                // writes HELP and TYPE: the exposition format allows it, and a scraper then knows the series exists.
                var help = string.IsNullOrEmpty(_instrument.Description) ? _instrument.Name : _instrument.Description;
                text.Append("# HELP ").Append(Name).Append(' ').Append(help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
                text.Append("# TYPE ").Append(Name).Append(' ').Append(Kind).Append('\n');
                foreach (var (labels, value) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    text.Append(Name).Append(Kind == "counter" ? "_total" : "").Append(Braces(labels)).Append(' ').Append(Number(value)).Append('\n');
                }
                foreach (var (labels, histogram) in _histograms.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    long cumulative = 0;
                    for (var i = 0; i <= _buckets.Length; i++)
                    {
                        cumulative += histogram.Counts[i];
                        var le = i < _buckets.Length ? Number(_buckets[i]) : "+Inf";
                        text.Append(Name).Append("_bucket").Append(Braces(Join(labels, $"le=\"{le}\""))).Append(' ').Append(cumulative).Append('\n');
                    }
                    text.Append(Name).Append("_sum").Append(Braces(labels)).Append(' ').Append(Number(histogram.Sum)).Append('\n');
                    text.Append(Name).Append("_count").Append(Braces(labels)).Append(' ').Append(histogram.Count).Append('\n');
                }
            }
        }

        private sealed class Histogram(long[] counts)
        {
            public long[] Counts { get; } = counts;

            public double Sum { get; set; }

            public long Count { get; set; }
        }

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length == 0)
            {
                return string.Empty;
            }
            var pairs = new List<string>(tags.Length);
            foreach (var tag in tags)
            {
                pairs.Add($"{Sanitize(tag.Key)}=\"{Escape(Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "")}\"");
            }
            pairs.Sort(StringComparer.Ordinal);
            return string.Join(',', pairs);
        }

        private static string Join(string labels, string extra) => labels.Length == 0 ? extra : labels + "," + extra;

        private static string Braces(string labels) => labels.Length == 0 ? string.Empty : "{" + labels + "}";

        private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

        private static string Number(double value) =>
            double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN" : value.ToString("R", CultureInfo.InvariantCulture);

        /// <summary>OpenTelemetry's mapping: dots to underscores, the unit as a suffix (seconds, bytes), <c>_total</c> added on output for counters.</summary>
        private static string PrometheusName(Instrument instrument, string kind)
        {
            var name = Sanitize(instrument.Name);
            var suffix = instrument.Unit switch
            {
                "s" => "_seconds",
                "By" => "_bytes",
                _ => "",
            };
            if (suffix.Length > 0 && !name.EndsWith(suffix, StringComparison.Ordinal))
            {
                name += suffix;
            }
            return kind == "counter" && name.EndsWith("_total", StringComparison.Ordinal) ? name[..^"_total".Length] : name;
        }

        private static string Sanitize(string name)
        {
            var chars = name.ToCharArray();
            for (var i = 0; i < chars.Length; i++)
            {
                if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] == '_' || chars[i] == ':'))
                {
                    chars[i] = '_';
                }
            }
            return new string(chars);
        }
    }
}
