using BenchmarkDotNet.Attributes;
using Connect.Tunnel.Frames;

namespace Connect.Bench.Micro;

/// <summary>The connect.v1 codec on its hot frames: DATA (written into a caller's buffer, as the multiplexer does) and WINDOW (allocating, as the multiplexer does today).</summary>
[MemoryDiagnoser]
public class FrameCodecBenchmarks
{
    private byte[] _payload = [];
    private byte[] _frame = [];
    private byte[] _destination = [];
    private byte[] _window = [];

    [Params(1024, 32 * 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadSize];
        Random.Shared.NextBytes(_payload);
        _frame = FrameCodec.Encode(FrameType.Data, 7, _payload);
        _destination = new byte[ProtocolLimits.HeaderSize + PayloadSize];
        _window = FrameCodec.EncodeWindow(7, 65536);
    }

    [Benchmark(Description = "Write DATA into buffer")]
    public int WriteData() => FrameCodec.Write(_destination, FrameType.Data, 7, _payload);

    [Benchmark(Description = "Encode DATA (new byte[])")]
    public byte[] EncodeData() => FrameCodec.Encode(FrameType.Data, 7, _payload);

    [Benchmark(Description = "Decode DATA")]
    public int DecodeData()
    {
        FrameCodec.TryDecode(_frame, ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out _);
        return consumed + frame.Payload.Length;
    }

    [Benchmark(Description = "Encode WINDOW (new byte[])")]
    public byte[] EncodeWindow() => FrameCodec.EncodeWindow(7, 65536);

    [Benchmark(Description = "Decode WINDOW")]
    public uint DecodeWindow()
    {
        FrameCodec.TryDecode(_window, ProtocolLimits.MaxFramePayload, out var frame, out _, out _);
        return FrameCodec.ReadWindowIncrement(frame.Payload.Span);
    }
}
