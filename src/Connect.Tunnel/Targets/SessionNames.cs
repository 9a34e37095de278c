using System.Text.RegularExpressions;

namespace Connect.Tunnel.Targets;

/// <summary>The rule for session names, shared by the agent, the tunnel endpoint and the proxy.</summary>
public static partial class SessionNames
{
    public const string Rule = "1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);
}
