namespace Connect.Tunnel.Targets;

/// <summary>Parsing of "host:port" targets, with IPv6 literals in brackets ("[::1]:443").</summary>
public static class TargetAddress
{
    /// <summary>Splits at the last colon outside brackets; the host keeps its brackets.</summary>
    public static bool TrySplit(string target, out string host, out string port)
    {
        host = port = string.Empty;
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || colon == target.Length - 1)
        {
            return false;
        }
        host = target[..colon];
        port = target[(colon + 1)..];
        if (host.StartsWith('[') != host.EndsWith(']'))
        {
            return false;
        }
        // An unbracketed IPv6 literal has more colons; require brackets so the port is unambiguous.
        return !host.Contains(':') || host.StartsWith('[');
    }

    /// <summary>Parses "host:port" into a dialable host (brackets removed) and a port in 1..65535.</summary>
    public static bool TryParse(string target, out string host, out int port)
    {
        port = 0;
        if (!TrySplit(target, out host, out var portText) || !int.TryParse(portText, System.Globalization.NumberStyles.None, null, out port) || port is < 1 or > 65535)
        {
            return false;
        }
        if (host.StartsWith('['))
        {
            host = host[1..^1];
        }
        return host.Length is > 0 and <= 253;
    }
}
