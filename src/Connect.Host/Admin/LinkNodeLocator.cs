using System.Collections.Immutable;
using Connect.Routing.Streams;
using Connect.Routing.NodeChannel;
using Connect.Host.Tunnels;
using Connect.Tunnel.Multiplexing;

namespace Connect.Host.Admin;

/// <summary>
/// Names the node whose tunnel link carries a stream the proxy just opened, for the access log: a stream on one of
/// this node's node channels runs on the link of the node the channel goes to (the grant that named that link says
/// which; the channel's data endpoint when the grant is already forgotten); any other stream is on a link here.
/// Reads only what the broker and the pool already keep, so it costs the request nothing.
/// </summary>
public sealed class LinkNodeLocator(NodeChannelPool channels, GrantCache grants, NodeIdentity identity)
{
    public string Locate(string session, MuxStream stream)
    {
        if (!ReferenceEquals(stream.Mux.Options, channels.ChannelOptions))
        {
            return identity.Address;
        }
        var endpoint = stream.Mux.RemoteDescription;
        var grant = grants.Healthy(session, ImmutableHashSet<string>.Empty).FirstOrDefault(g => g.DataEndpoint == endpoint);
        return grant?.LinkNode ?? $"node channel {endpoint}";
    }
}
