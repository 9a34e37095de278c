using Akka.Actor;
using Connect.Tunnel.Multiplexing;

namespace Connect.Routing.Links;

/// <summary>An agent's WebSocket on this node: its multiplexer, the session it serves and the actor that represents it.</summary>
public sealed class TunnelLink(string linkId, string sessionId, TunnelMux mux, string remoteAddress, DateTimeOffset since)
{
    public string LinkId { get; } = linkId;

    public string SessionId { get; } = sessionId;

    public TunnelMux Mux { get; } = mux;

    public string RemoteAddress { get; } = remoteAddress;

    public DateTimeOffset Since { get; } = since;

    /// <summary>Set once the link actor is started.</summary>
    public IActorRef Actor { get; set; } = ActorRefs.Nobody;
}
