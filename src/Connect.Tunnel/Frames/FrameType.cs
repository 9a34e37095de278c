namespace Connect.Tunnel.Frames;

/// <summary>The kind of a connect.v1 frame; the numbers are on the wire and never change within v1.</summary>
public enum FrameType : byte
{
    /// <summary>Opens a stream to a target ("host:port"); only the side that owns the stream id parity sends it.</summary>
    Open = 0x01,
    /// <summary>The receiver of OPEN dialled the target; data may flow.</summary>
    OpenOk = 0x02,
    /// <summary>The receiver of OPEN could not or would not dial the target: a code and a reason.</summary>
    OpenErr = 0x03,
    /// <summary>Stream bytes, counted against the receiver's credit window.</summary>
    Data = 0x04,
    /// <summary>Grants the peer more credit on one stream (a 32-bit increment).</summary>
    Window = 0x05,
    /// <summary>Half-close: the sender will send no more DATA on this stream.</summary>
    Fin = 0x06,
    /// <summary>Abort a stream in both directions, with a code.</summary>
    Rst = 0x07,
    /// <summary>Link keep-alive probe, 8 opaque bytes echoed in PONG.</summary>
    Ping = 0x08,
    /// <summary>Answer to PING, carrying the same 8 bytes.</summary>
    Pong = 0x09,
    /// <summary>"Open no new streams on this link; finish the ones you have" (as in RFC 9113 section 6.8).</summary>
    GoAway = 0x0A,
}
