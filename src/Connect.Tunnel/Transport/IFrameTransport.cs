namespace Connect.Tunnel.Transport;

/// <summary>
/// What carries connect.v1 frames: a WebSocket (agent links, message-based) or a byte stream
/// (node-to-node channels). The multiplexer owns exactly one transport and is its only reader and writer.
/// </summary>
public interface IFrameTransport
{
    /// <summary>True when the transport preserves message boundaries (a frame may then never straddle two messages).</summary>
    bool IsMessageBased { get; }

    /// <summary>A short description of the peer for logs (address, node).</summary>
    string RemoteDescription { get; }

    /// <summary>Receives bytes into <paramref name="buffer"/>; an empty buffer waits until data is available without consuming it.</summary>
    ValueTask<TransportReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Sends bytes holding whole frames (one message on a message-based transport).</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken);

    /// <summary>Starts a graceful close with a code and a reason (a WebSocket close frame, or a plain close on a stream).</summary>
    ValueTask CloseAsync(int code, string reason, CancellationToken cancellationToken);

    /// <summary>Tears the transport down at once; pending operations fail.</summary>
    void Abort();
}

/// <summary>The result of one receive.</summary>
public readonly record struct TransportReceiveResult(int Count, bool EndOfMessage, bool Closed, bool IsText = false, int? CloseCode = null, string? CloseReason = null)
{
    public static TransportReceiveResult PeerClosed(int? code, string? reason) => new(0, true, true, false, code, reason);
}
