namespace Connect.Routing.NodeChannel;

/// <summary>On a node channel, an OPEN names the link and the target: <c>{linkId} {host:port}</c> (link ids contain no space).</summary>
public static class NodeChannelTargets
{
    public static string Format(string linkId, string target) => $"{linkId} {target}";

    public static bool TryParse(string value, out string linkId, out string target)
    {
        var space = value.IndexOf(' ');
        linkId = space > 0 ? value[..space] : string.Empty;
        target = space > 0 ? value[(space + 1)..] : string.Empty;
        return space > 0 && target.Length > 0;
    }
}
