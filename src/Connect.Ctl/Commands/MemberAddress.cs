namespace Connect.Ctl.Commands;

/// <summary>How operators name a cluster member: the full address, or host:port.</summary>
public static class MemberAddress
{
    /// <summary>Full address, or host:port as operators type it.</summary>
    public static bool Matches(string full, string given) =>
        string.Equals(full, given.Trim(), StringComparison.OrdinalIgnoreCase) || full.EndsWith("@" + given.Trim(), StringComparison.OrdinalIgnoreCase);
}
