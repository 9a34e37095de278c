using Connect.Tunnel.Frames;

namespace Connect.Tunnel.Multiplexing;

/// <summary>An OPEN from the peer waiting for this side's answer: accept it (OPEN_OK) or refuse it (OPEN_ERR), exactly once.</summary>
public sealed class IncomingStream
{
    private readonly TunnelMux _mux;
    private readonly MuxStream _stream;
    private int _answered;

    internal IncomingStream(TunnelMux mux, MuxStream stream)
    {
        _mux = mux;
        _stream = stream;
    }

    public uint StreamId => _stream.Id;

    /// <summary>The "host:port" the peer asks for.</summary>
    public string Target => _stream.Target;

    /// <summary>Sends OPEN_OK and returns the stream, ready for data both ways.</summary>
    public MuxStream Accept()
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0)
        {
            throw new InvalidOperationException("this OPEN was already answered");
        }
        _stream.OnOpenOk();
        _mux.SendControl(FrameCodec.Encode(FrameType.OpenOk, _stream.Id, ReadOnlySpan<byte>.Empty));
        return _stream;
    }

    /// <summary>Sends OPEN_ERR with a code and a reason the other side will show to its user.</summary>
    public void Reject(OpenErrorCode code, string reason)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0)
        {
            return;
        }
        _mux.SendControl(FrameCodec.EncodeCodeAndReason(FrameType.OpenErr, _stream.Id, (byte)code, reason));
        _stream.OnReset(ResetCode.Cancel, $"refused: {reason}", byPeer: false);
    }
}
