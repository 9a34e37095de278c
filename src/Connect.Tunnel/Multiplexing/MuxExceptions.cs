using Connect.Tunnel.Frames;

namespace Connect.Tunnel.Multiplexing;

/// <summary>The peer refused to open a stream (OPEN_ERR), or the link could not carry it.</summary>
public sealed class StreamOpenException(OpenErrorCode code, string reason) : Exception($"{code}: {reason}")
{
    public OpenErrorCode Code { get; } = code;
    public string Reason { get; } = reason;
}

/// <summary>The stream was reset (RST) by either side, or its link went away.</summary>
public sealed class StreamResetException(ResetCode code, string reason, bool byPeer) : IOException($"stream reset ({code}{(byPeer ? ", by peer" : "")}): {reason}")
{
    public ResetCode Code { get; } = code;
    public string Reason { get; } = reason;
    public bool ByPeer { get; } = byPeer;
}

/// <summary>How a link ended: who closed it, with which code and why.</summary>
public sealed record LinkCloseInfo(int Code, string Reason, bool ByPeer)
{
    public override string ToString() => $"{Code} ({(ByPeer ? "peer" : "local")}): {Reason}";
}
