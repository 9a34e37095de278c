namespace Connect.Ctl;

/// <summary>Plain aligned columns, as pbm prints them: a header row, then one row per item; no borders, so grep and awk work.</summary>
public static class Table
{
    public static void Write(TextWriter output, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        output.WriteLine(Line(headers, widths));
        foreach (var row in all)
        {
            output.WriteLine(Line(row, widths));
        }
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.#} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB",
    };

    public static string Age(TimeSpan age) => age.TotalSeconds switch
    {
        < 60 => $"{age.TotalSeconds:0}s",
        < 3600 => $"{(int)age.TotalMinutes}m{age.Seconds:00}s",
        _ => $"{(int)age.TotalHours}h{age.Minutes:00}m",
    };

    public static string OrDash(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";
}
