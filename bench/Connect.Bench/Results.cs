namespace Connect.Bench;

/// <summary>One scenario case measured on one path: its metrics (medians over the runs) and every run's primary value.</summary>
public sealed record CaseResult(
    string Scenario,
    string Case,
    string Path,
    string PrimaryMetric,
    bool HigherIsBetter,
    Dictionary<string, double> Metrics,
    List<double> Runs,
    string? Unavailable = null,
    string? Note = null)
{
    public double? Primary => Unavailable is null && Metrics.TryGetValue(PrimaryMetric, out var v) ? v : null;
}

/// <summary>Everything one run of the suite produced.</summary>
public sealed record SuiteResults(
    string StartedUtc,
    bool Quick,
    string Command,
    Dictionary<string, string> Machine,
    Dictionary<string, string> Settings,
    Dictionary<string, string> Paths,
    List<CaseResult> Cases,
    Dictionary<string, double> Scale,
    List<string> Notes);

public static class Stats
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Nearest-rank percentile of <paramref name="sorted"/> (ascending).</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
