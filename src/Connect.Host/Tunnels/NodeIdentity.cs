namespace Connect.Host.Tunnels;

/// <summary>Who this node is: its cluster address and the URLs at which agents and proxy clients reach it (known once the listeners are bound).</summary>
public sealed class NodeIdentity
{
    public string Address { get; set; } = "";

    public string TunnelUrl { get; set; } = "";

    public string ProxyUrl { get; set; } = "";

    public string AdminUrl { get; set; } = "";

    /// <summary>host:port of this node's node-to-node data channel.</summary>
    public string DataEndpoint { get; set; } = "";
}
