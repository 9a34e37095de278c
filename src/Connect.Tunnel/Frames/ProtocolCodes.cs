namespace Connect.Tunnel.Frames;

/// <summary>Why an OPEN was refused (the code byte of OPEN_ERR).</summary>
public enum OpenErrorCode : byte
{
    Unknown = 0,
    /// <summary>The target actively refused the TCP connection.</summary>
    ConnectionRefused = 1,
    /// <summary>The target's name did not resolve on the agent's side.</summary>
    NameNotResolved = 2,
    /// <summary>The target network or host is unreachable from the agent.</summary>
    Unreachable = 3,
    /// <summary>The destination is outside the agent's allow-list (the customer's policy).</summary>
    NotAllowed = 4,
    /// <summary>Dialling the target timed out.</summary>
    Timeout = 5,
    /// <summary>The link is going away (GOAWAY sent or received); open the stream elsewhere.</summary>
    GoingAway = 6,
    /// <summary>The receiver's stream limit is reached.</summary>
    TooManyStreams = 7,
    /// <summary>The OPEN payload is not a valid "host:port" target.</summary>
    BadTarget = 8,
    /// <summary>Anything else; the reason says what.</summary>
    Internal = 9,
}

/// <summary>Why a stream was aborted (the code byte of RST).</summary>
public enum ResetCode : byte
{
    /// <summary>The sender no longer wants the stream (client went away, request cancelled).</summary>
    Cancel = 0,
    /// <summary>The connection to the target (or to the proxy client) failed or was reset.</summary>
    ConnectionReset = 1,
    /// <summary>The stream broke a protocol rule that does not justify closing the whole link.</summary>
    ProtocolError = 2,
    /// <summary>A drain deadline passed while the stream was still open.</summary>
    DrainDeadline = 3,
    /// <summary>The stream was idle longer than allowed.</summary>
    IdleTimeout = 4,
    /// <summary>The link that carried the stream went away.</summary>
    LinkLost = 5,
    Internal = 6,
}

/// <summary>Why a link is being drained (the code byte of GOAWAY).</summary>
public enum GoAwayCode : byte
{
    /// <summary>The server is draining for a deploy; reconnect elsewhere at once.</summary>
    Draining = 1,
    /// <summary>An operator asked this session's links to move ("connect kick").</summary>
    Kicked = 2,
    /// <summary>The sender is shutting down.</summary>
    Shutdown = 3,
    /// <summary>The sender used its last stream id; open a fresh link (or node channel) for new streams.</summary>
    StreamIdsExhausted = 4,
}

/// <summary>WebSocket close codes used by connect.v1 (RFC 6455 section 7.4).</summary>
public static class CloseCodes
{
    public const int Normal = 1000;
    /// <summary>The server is going away (drain finished, shutdown).</summary>
    public const int GoingAway = 1001;
    /// <summary>A malformed or out-of-order frame: the link is closed, never the node.</summary>
    public const int ProtocolError = 1002;
    /// <summary>A text message where binary frames are required.</summary>
    public const int UnsupportedData = 1003;
    /// <summary>A rule of the server was broken (a limit, an OPEN from the wrong side).</summary>
    public const int PolicyViolation = 1008;
    /// <summary>A message or frame above the negotiated size limit.</summary>
    public const int MessageTooBig = 1009;
    /// <summary>
    /// The connection ended without a close frame (transport failed, aborted). RFC 6455 7.4.1 reserves it for
    /// reporting: it is recorded locally and never sent in a close frame.
    /// </summary>
    public const int AbnormalClosure = 1006;
    /// <summary>The sender hit an unexpected condition (a bug or a failed callback), not the peer's fault.</summary>
    public const int InternalError = 1011;
    /// <summary>No frame arrived from the peer within the keep-alive timeout (private range, RFC 6455 7.4.2).</summary>
    public const int KeepAliveTimeout = 4408;
    /// <summary>
    /// The session already holds its limit of links (private range, as HTTP 429): the entity refused this one after the
    /// upgrade, when the endpoint could not count the session's links in time. Reconnect later.
    /// </summary>
    public const int TooManyLinks = 4429;
}
