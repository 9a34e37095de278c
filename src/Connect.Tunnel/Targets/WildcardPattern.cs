namespace Connect.Tunnel.Targets;

/// <summary>
/// A <c>*</c> glob over plain text (session name patterns such as <c>team-a-*</c>): <c>*</c> matches any run of
/// characters, everything else matches itself (ordinal). The match keeps only the last star to fall back to, so it
/// costs at most pattern length × text length steps: never the exponential backtracking of a regex built from a glob.
/// </summary>
public sealed class WildcardPattern(string pattern)
{
    public string Pattern { get; } = pattern;

    public bool IsMatch(string text)
    {
        var p = 0;
        var t = 0;
        var star = -1;
        var resume = 0;
        while (t < text.Length)
        {
            if (p < Pattern.Length && Pattern[p] == '*')
            {
                star = p++;
                resume = t;
            }
            else if (p < Pattern.Length && Pattern[p] == text[t])
            {
                p++;
                t++;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++resume;
            }
            else
            {
                return false;
            }
        }
        while (p < Pattern.Length && Pattern[p] == '*')
        {
            p++;
        }
        return p == Pattern.Length;
    }

    public override string ToString() => Pattern;
}
