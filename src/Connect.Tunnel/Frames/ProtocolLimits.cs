namespace Connect.Tunnel.Frames;

/// <summary>The fixed numbers of connect.v1.</summary>
public static class ProtocolLimits
{
    /// <summary>The WebSocket subprotocol name the agent offers and the server selects.</summary>
    public const string SubProtocol = "connect.v1";

    /// <summary>type (1) + stream id (4) + payload length (4), big-endian.</summary>
    public const int HeaderSize = 9;

    /// <summary>No frame payload may exceed this; a larger length closes the link with 1009.</summary>
    public const int MaxFramePayload = 64 * 1024;

    /// <summary>Credit each side has on a new stream before any WINDOW frame (bytes).</summary>
    public const int InitialWindow = 256 * 1024;

    /// <summary>A stream's window may never exceed this; a WINDOW that would overflow it is a protocol error.</summary>
    public const long MaxWindow = int.MaxValue;

    /// <summary>Longest OPEN target ("host:port") in bytes.</summary>
    public const int MaxTargetLength = 1024;

    /// <summary>Longest reason text in OPEN_ERR, RST or GOAWAY, in bytes.</summary>
    public const int MaxReasonLength = 1024;

    /// <summary>PING and PONG carry exactly this many bytes.</summary>
    public const int PingPayloadSize = 8;

    /// <summary>
    /// The highest stream id (ids are u32 and only increase, +2 per OPEN). A side whose next id would pass it sends
    /// GOAWAY(StreamIdsExhausted) with its last OPEN, so a link or node channel is replaced before ids wrap.
    /// </summary>
    public const uint LastStreamId = uint.MaxValue;
}
