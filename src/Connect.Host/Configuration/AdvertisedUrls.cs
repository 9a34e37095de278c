namespace Connect.Host.Configuration;

/// <summary>
/// The URLs a node gives out about itself. One place for the scheme rule, so the start-up banner, the admin API and
/// the tunnel URL advertised to the cluster (suggested to agents in GOAWAY) can never disagree: a node with a tunnel
/// certificate is reached at wss:// only, and a drain never sends an agent, and its bearer token, to a plain ws:// URL.
/// </summary>
public static class AdvertisedUrls
{
    /// <summary>A host as it goes into a URL authority: IPv6 literals in brackets.</summary>
    public static string UrlHost(string host) => host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host;

    public static string TunnelScheme(ConnectSettings settings) => settings.Tunnel.Certificate.IsConfigured ? "wss" : "ws";

    /// <summary>The agents' URL of this node's tunnel listener at <paramref name="port"/>.</summary>
    public static string Tunnel(ConnectSettings settings, int port) => $"{TunnelScheme(settings)}://{UrlHost(settings.AdvertisedHost)}:{port}";

    /// <summary>The URL advertised to the other nodes: <c>Connect:Tunnel:PublicUrl</c> if set, else derived (known only when the port is fixed).</summary>
    public static string? AdvertisedTunnel(ConnectSettings settings)
    {
        if (!string.IsNullOrWhiteSpace(settings.Tunnel.PublicUrl))
        {
            return settings.Tunnel.PublicUrl;
        }
        return settings.Tunnel.Port != 0 ? Tunnel(settings, settings.Tunnel.Port) : null;
    }
}
