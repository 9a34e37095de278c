namespace Connect.Tunnel.Multiplexing;

/// <summary>Settings of one multiplexer (one link or one node channel).</summary>
public sealed record MuxOptions
{
    /// <summary>True on the side that dialled the transport: it opens streams with odd ids, the other side with even ids.</summary>
    public required bool IsDialer { get; init; }

    /// <summary>Whether the peer may open streams towards us (the agent: yes; the server on an agent link: no).</summary>
    public bool AcceptInboundStreams { get; init; }

    /// <summary>Most streams open at once on this link, in both directions together; OPENs beyond it get OPEN_ERR.</summary>
    public int MaxStreams { get; init; } = 1024;

    /// <summary>Largest DATA payload this side sends (at most the protocol's 64 KiB).</summary>
    public int MaxDataChunk { get; init; } = 32 * 1024;

    /// <summary>
    /// Largest DATA payload a stream sends while it is the only stream open on its link (a bulk transfer): the
    /// protocol's 64 KiB by default, so half the frames, target reads, WebSocket messages and wake-ups per MiB of
    /// <see cref="MaxDataChunk"/>. As soon as another stream is open, writers go back to <see cref="MaxDataChunk"/>,
    /// so no frame of one stream holds another stream's small response back by more than that (the fairness quantum).
    /// Never below <see cref="MaxDataChunk"/> (0 turns it off); at most <see cref="Frames.ProtocolLimits.MaxFramePayload"/>.
    /// </summary>
    public int SoloDataChunk { get; init; } = Frames.ProtocolLimits.MaxFramePayload;

    /// <summary>
    /// On a WebSocket, receive the payload of a large DATA frame straight into the array the stream keeps (one copy
    /// less per byte), reading the next header alone after such a frame. For the node's side of agent links, where
    /// those small reads are served from Kestrel's pipe; on the agent a header read can cost a socket receive of its
    /// own (its WebSocket reads the socket through a small buffer), so there it stays off.
    /// </summary>
    public bool ReceiveDataDirect { get; init; }

    /// <summary>Largest WebSocket message accepted, in bytes; larger closes the link with 1009.</summary>
    public int MaxMessageSize { get; init; } = 1024 * 1024;

    /// <summary>Most bytes sent in one transport write when batching frames.</summary>
    public int MaxBatchSize { get; init; } = 64 * 1024;

    /// <summary>How often a PING is sent; zero turns keep-alive off.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A node-wide sweep that drives this link's keep-alive instead of a timer of its own (a node with thousands of
    /// links); null gives each multiplexer its own timer (the agent, node channels). Same PINGs, same timeout.
    /// </summary>
    public MuxKeepAliveSweep? KeepAliveSweep { get; init; }

    /// <summary>
    /// At its interval, send no PING when a PING from the peer arrived within the last two intervals: our PONGs keep
    /// the peer's timeout satisfied and its PINGs keep ours, at half the keep-alive frames (docs/PROTOCOL.md section
    /// 5). Only one side of a link may set it (the node on agent links), else neither side would ping.
    /// </summary>
    public bool SkipPingWhilePeerPings { get; init; }

    /// <summary>Close the link when nothing has arrived from the peer for this long.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>Most control frames (PONG, WINDOW, RST...) waiting to be sent before the peer is judged not to read.</summary>
    public int MaxQueuedControlFrames { get; init; } = 4096;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Tests only: the first id this side opens (default 1 for the dialer, 2 otherwise; same parity required), so a
    /// test can start near <see cref="Frames.ProtocolLimits.LastStreamId"/> instead of opening 2^31 streams.
    /// </summary>
    internal uint? FirstLocalStreamId { get; init; }
}
