using Connect.Tunnel.Frames;

namespace Connect.Actors.Protocol;

/// <summary>Entity to link: send GOAWAY; the link closes when its last stream ends.</summary>
public sealed record GoAwayLink(GoAwayCode Code, string Reason) : IConnectMessage;
