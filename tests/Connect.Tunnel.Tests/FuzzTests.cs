using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using Connect.Testing.Tunnel;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Xunit.Abstractions;

namespace Connect.Tunnel.Tests;

/// <summary>
/// Generated input: valid frames, mutations of them (flipped bytes, cuts, wrong lengths, wrong types) and
/// plain noise. The decoder must never throw and must say something true about every input; a real
/// multiplexer fed the same kind of input must always end with a close code, never an exception.
/// Seeds are fixed, so a failure names a reproducible case.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    private static readonly int[] ProtocolCloseCodes =
    {
        CloseCodes.ProtocolError, CloseCodes.UnsupportedData, CloseCodes.PolicyViolation, CloseCodes.MessageTooBig,
    };

    private static readonly uint[] InterestingIds = { 0, 1, 2, 3, 4, 5, 6, 0x7FFFFFFF, 0x80000000, uint.MaxValue - 1, uint.MaxValue };

    private static readonly uint[] InterestingLengths =
    {
        0, 1, 3, 4, 7, 8, 9, 1024, 1025, 1026, ProtocolLimits.MaxFramePayload, ProtocolLimits.MaxFramePayload + 1,
        0x7FFFFFFF, 0x80000000, uint.MaxValue,
    };

    /// <summary>A valid encoding of a random frame (stream ids are right for the type).</summary>
    private static byte[] ValidFrame(Random rng, bool small = false)
    {
        var type = (FrameType)rng.Next(1, 11);
        uint Id() => rng.Next(4) == 0 ? InterestingIds[rng.Next(2, InterestingIds.Length)] : (uint)rng.Next(1, 9);
        string Text(int max)
        {
            var length = rng.Next(0, max + 1);
            var chars = new char[length];
            for (var i = 0; i < length; i++)
            {
                chars[i] = rng.Next(8) == 0 ? (char)rng.Next(0xA0, 0x2FFF) : (char)rng.Next(0x20, 0x7F);
            }
            return new string(chars);
        }
        switch (type)
        {
            case FrameType.Open:
                return FrameCodec.EncodeOpen(Id(), Text(small || rng.Next(20) != 0 ? 40 : 1030) + ":" + rng.Next(1, 65536));
            case FrameType.OpenOk:
            case FrameType.Fin:
                return FrameCodec.Encode(type, Id(), ReadOnlySpan<byte>.Empty);
            case FrameType.OpenErr:
            case FrameType.Rst:
                return FrameCodec.EncodeCodeAndReason(type, Id(), (byte)rng.Next(256), Text(small || rng.Next(20) != 0 ? 40 : 1100));
            case FrameType.Data:
                var data = new byte[rng.Next(200) == 0 && !small ? rng.Next(1, ProtocolLimits.MaxFramePayload + 1) : rng.Next(1, 64)];
                rng.NextBytes(data);
                return FrameCodec.Encode(type, Id(), data);
            case FrameType.Window:
                return FrameCodec.EncodeWindow(Id(), rng.Next(3) == 0 ? (uint)int.MaxValue : (uint)rng.Next(1, int.MaxValue));
            case FrameType.Ping:
            case FrameType.Pong:
                return FrameCodec.EncodePing(type, (ulong)rng.NextInt64());
            default:
                var servers = Enumerable.Range(0, rng.Next(0, small || rng.Next(50) != 0 ? 4 : 200)).Select(_ => "wss://" + Text(30)).ToArray();
                return FrameCodec.EncodeGoAway((GoAwayCode)rng.Next(1, 4), Text(small || rng.Next(20) != 0 ? 40 : 1100), servers);
        }
    }

    /// <summary>One to three mutations of a valid frame, or noise.</summary>
    private static byte[] Mutated(Random rng, byte[] frame)
    {
        var bytes = frame;
        for (var round = rng.Next(1, 4); round > 0; round--)
        {
            switch (rng.Next(9))
            {
                case 0: // flip a bit
                    bytes = (byte[])bytes.Clone();
                    if (bytes.Length > 0)
                    {
                        bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                    }
                    break;
                case 1: // replace a byte, most often in the header
                    bytes = (byte[])bytes.Clone();
                    if (bytes.Length > 0)
                    {
                        bytes[rng.Next(2) == 0 ? rng.Next(Math.Min(9, bytes.Length)) : rng.Next(bytes.Length)] = (byte)rng.Next(256);
                    }
                    break;
                case 2: // cut
                    bytes = bytes[..rng.Next(bytes.Length + 1)];
                    break;
                case 3: // another length field
                    if (bytes.Length >= 9)
                    {
                        bytes = (byte[])bytes.Clone();
                        var length = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(5));
                        var next = rng.Next(3) switch
                        {
                            0 => InterestingLengths[rng.Next(InterestingLengths.Length)],
                            1 => (uint)(length + rng.Next(-3, 4)),
                            _ => (uint)rng.NextInt64(0, 1L << 32),
                        };
                        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(5), next);
                    }
                    break;
                case 4: // another type
                    if (bytes.Length > 0)
                    {
                        bytes = (byte[])bytes.Clone();
                        bytes[0] = rng.Next(4) == 0 ? (byte)rng.Next(256) : (byte)rng.Next(0, 12);
                    }
                    break;
                case 5: // another stream id
                    if (bytes.Length >= 5)
                    {
                        bytes = (byte[])bytes.Clone();
                        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), InterestingIds[rng.Next(InterestingIds.Length)]);
                    }
                    break;
                case 6: // garbage after it
                    var tail = new byte[rng.Next(1, 20)];
                    rng.NextBytes(tail);
                    bytes = bytes.Concat(tail).ToArray();
                    break;
                case 7: // a second frame after it
                    bytes = bytes.Concat(ValidFrame(rng, small: true)).ToArray();
                    break;
                default: // a payload byte made invalid UTF-8
                    if (bytes.Length > 10)
                    {
                        bytes = (byte[])bytes.Clone();
                        bytes[rng.Next(9, bytes.Length)] = (byte)rng.Next(0x80, 0x100);
                    }
                    break;
            }
        }
        return bytes;
    }

    private static byte[] Noise(Random rng)
    {
        var bytes = new byte[rng.Next(0, 48)];
        rng.NextBytes(bytes);
        if (bytes.Length > 0 && rng.Next(2) == 0)
        {
            bytes[0] = (byte)rng.Next(1, 11); // a known type, so the rest of the header gets looked at
        }
        return bytes;
    }

    private static byte[] Generate(Random rng) => rng.Next(10) switch
    {
        0 => ValidFrame(rng),
        1 => Noise(rng),
        _ => Mutated(rng, ValidFrame(rng)),
    };

    /// <summary>Checks what TryDecode said about one input against the input itself.</summary>
    private static string? CheckDecode(byte[] input, DecodeStatus status, Frame frame, int consumed, FrameViolation? violation)
    {
        var known = input.Length > 0 && Enum.IsDefined((FrameType)input[0]);
        switch (status)
        {
            case DecodeStatus.NeedMore:
                if (violation is not null || consumed != 0)
                {
                    return "NeedMore with a violation or consumed bytes";
                }
                if (input.Length >= ProtocolLimits.HeaderSize)
                {
                    var length = BinaryPrimitives.ReadUInt32BigEndian(input.AsSpan(5));
                    if (!known || length > ProtocolLimits.MaxFramePayload || ProtocolLimits.HeaderSize + length <= input.Length)
                    {
                        return "NeedMore for a complete or impossible frame";
                    }
                }
                else if (input.Length > 0 && !known)
                {
                    return "NeedMore for an unknown type byte";
                }
                return null;
            case DecodeStatus.Violation:
                if (violation is null || consumed != 0 || string.IsNullOrEmpty(violation.Reason))
                {
                    return "Violation without a reason, or with consumed bytes";
                }
                if (violation.CloseCode == CloseCodes.MessageTooBig)
                {
                    return input.Length >= ProtocolLimits.HeaderSize && BinaryPrimitives.ReadUInt32BigEndian(input.AsSpan(5)) > ProtocolLimits.MaxFramePayload
                        ? null : "1009 without an oversize length";
                }
                return violation.CloseCode == CloseCodes.ProtocolError ? null : $"unexpected close code {violation.CloseCode}";
            case DecodeStatus.Frame:
                if (!known || violation is not null || consumed != ProtocolLimits.HeaderSize + frame.Payload.Length || consumed > input.Length)
                {
                    return "Frame with a wrong size or type";
                }
                // The frame re-encodes to exactly the bytes it came from.
                if (!FrameCodec.Encode(frame.Type, frame.StreamId, frame.Payload.Span).AsSpan().SequenceEqual(input.AsSpan(0, consumed)))
                {
                    return "Frame does not re-encode to its input";
                }
                return CheckReadable(frame);
            default:
                return $"unknown status {status}";
        }
    }

    /// <summary>What the multiplexer reads from a decoded frame must be readable without an exception.</summary>
    private static string? CheckReadable(Frame frame)
    {
        var payload = frame.Payload.Span;
        var linkFrame = frame.Type is FrameType.Ping or FrameType.Pong or FrameType.GoAway;
        if (linkFrame != (frame.StreamId == 0))
        {
            return "stream id rule broken";
        }
        switch (frame.Type)
        {
            case FrameType.Open:
                return FrameCodec.ReadTarget(payload).Length > 0 && payload.Length <= ProtocolLimits.MaxTargetLength ? null : "bad target accepted";
            case FrameType.OpenOk:
            case FrameType.Fin:
                return payload.IsEmpty ? null : "payload accepted";
            case FrameType.OpenErr:
            case FrameType.Rst:
                var (_, reason) = FrameCodec.ReadCodeAndReason(payload);
                return Encoding.UTF8.GetByteCount(reason) <= ProtocolLimits.MaxReasonLength ? null : "long reason accepted";
            case FrameType.Data:
                return payload.Length > 0 ? null : "empty DATA accepted";
            case FrameType.Window:
                var increment = FrameCodec.ReadWindowIncrement(payload);
                return increment is >= 1 and <= int.MaxValue ? null : "bad increment accepted";
            case FrameType.Ping:
            case FrameType.Pong:
                FrameCodec.ReadPing(payload);
                return null;
            case FrameType.GoAway:
                var info = FrameCodec.ReadGoAway(payload);
                return Encoding.UTF8.GetByteCount(info.Reason) <= ProtocolLimits.MaxReasonLength ? null : "long GOAWAY reason accepted";
            default:
                return "unknown type accepted";
        }
    }

    [Fact]
    public void A_million_generated_and_mutated_frames_never_make_the_decoder_throw_or_lie()
    {
        const int count = 1_000_000;
        var statuses = new int[3];
        var codes = new Dictionary<int, int>();
        var failures = new List<string>();
        Parallel.For(0, 8, worker =>
        {
            var rng = new Random(1_000 + worker);
            var localStatuses = new int[3];
            for (var i = worker; i < count; i += 8)
            {
                var input = Generate(rng);
                string? problem;
                try
                {
                    // Decode back to back as the read loop does, until the input needs more or breaks a rule.
                    var offset = 0;
                    while (true)
                    {
                        var rest = input[offset..];
                        var status = FrameCodec.TryDecode(rest, ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
                        problem = CheckDecode(rest, status, frame, consumed, violation);
                        localStatuses[(int)status]++;
                        if (status == DecodeStatus.Violation)
                        {
                            lock (codes)
                            {
                                codes[violation!.CloseCode] = codes.GetValueOrDefault(violation.CloseCode) + 1;
                            }
                        }
                        if (problem is not null || status != DecodeStatus.Frame || consumed == rest.Length)
                        {
                            break;
                        }
                        offset += consumed;
                    }
                }
                catch (Exception e)
                {
                    problem = $"threw {e.GetType().Name}: {e.Message}";
                }
                if (problem is not null)
                {
                    lock (failures)
                    {
                        failures.Add($"worker {worker} case {i}: {problem}: {Convert.ToHexString(input.AsSpan(0, Math.Min(64, input.Length)))}");
                    }
                }
            }
            lock (statuses)
            {
                for (var s = 0; s < 3; s++)
                {
                    statuses[s] += localStatuses[s];
                }
            }
        });

        output.WriteLine($"decode outcomes (frame, need more, violation): {string.Join(", ", statuses)}; violation codes: {string.Join(", ", codes.Select(kv => $"{kv.Key}: {kv.Value}"))}");
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(20)));
        // The generator reaches every outcome often, or it proves little.
        Assert.All(statuses, s => Assert.True(s > 50_000, $"statuses {string.Join(",", statuses)}"));
        Assert.True(codes.GetValueOrDefault(CloseCodes.ProtocolError) > 100_000 && codes.GetValueOrDefault(CloseCodes.MessageTooBig) > 10_000,
            string.Join(", ", codes.Select(kv => $"{kv.Key}: {kv.Value}")));
    }

    private sealed record Message(byte[] Bytes, bool IsText);

    /// <summary>What a receiver that only knows the codec can say about a sequence of messages.</summary>
    private sealed record Expectation(int? CodecCloseCode, bool OnlyLinkFramesBefore, bool AllFramesHarmless);

    private static Expectation Judge(IEnumerable<Message> messages, bool messageBased)
    {
        var onlyLinkFrames = true;
        var stream = new List<byte>();
        foreach (var message in messages)
        {
            if (message.IsText)
            {
                return new Expectation(CloseCodes.UnsupportedData, onlyLinkFrames, false);
            }
            stream.AddRange(message.Bytes);
            var bytes = stream.ToArray();
            var offset = 0;
            while (offset < bytes.Length)
            {
                var status = FrameCodec.TryDecode(bytes.AsMemory(offset), ProtocolLimits.MaxFramePayload, out var frame, out var consumed, out var violation);
                if (status == DecodeStatus.Violation)
                {
                    return new Expectation(violation!.CloseCode, onlyLinkFrames, false);
                }
                if (status == DecodeStatus.NeedMore)
                {
                    break;
                }
                // PING, PONG and GOAWAY are valid on any link in any state; anything else depends on stream state.
                onlyLinkFrames &= frame.Type is FrameType.Ping or FrameType.Pong or FrameType.GoAway;
                offset += consumed;
            }
            stream.RemoveRange(0, offset);
            if (messageBased && stream.Count > 0)
            {
                return new Expectation(CloseCodes.ProtocolError, onlyLinkFrames, false); // a message ended inside a frame
            }
        }
        return stream.Count > 0
            ? new Expectation(CloseCodes.ProtocolError, onlyLinkFrames, false) // the byte stream ended inside a frame
            : new Expectation(null, onlyLinkFrames, onlyLinkFrames);
    }

    private static Message RandomMessage(Random rng, bool messageBased)
    {
        if (messageBased && rng.Next(60) == 0)
        {
            return new Message("{\"hello\":1}"u8.ToArray(), IsText: true);
        }
        var frames = Enumerable.Range(0, rng.Next(1, 4)).Select(_ => rng.Next(10) switch
        {
            < 4 => ValidFrame(rng, small: true),
            < 6 => FrameCodec.EncodePing(rng.Next(2) == 0 ? FrameType.Ping : FrameType.Pong, (ulong)rng.NextInt64()),
            < 9 => Mutated(rng, ValidFrame(rng, small: true)),
            _ => Noise(rng),
        });
        return new Message(frames.SelectMany(f => f).ToArray(), IsText: false);
    }

    private static async Task<(string? Problem, int Code)> RunScenarioAsync(TransportKind kind, int index, IReadOnlyList<Message> messages, MuxOptions options)
    {
        var link = await RawLink.StartAsync(kind, options, incoming =>
        {
            if (incoming.StreamId % 4 == 0)
            {
                incoming.Reject(OpenErrorCode.NotAllowed, "not on the allow-list");
            }
            else
            {
                incoming.Accept(); // never read: reset when the link goes
            }
        });
        try
        {
            try
            {
                foreach (var message in messages)
                {
                    if (message.IsText)
                    {
                        await link.Raw.SendTextAsync(Encoding.UTF8.GetString(message.Bytes));
                    }
                    else
                    {
                        await link.Raw.SendAsync(message.Bytes);
                    }
                }
                await link.Raw.CloseOutputAsync();
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                // The multiplexer closed the link while we were still sending: that is its right.
            }
            try
            {
                // Finish the close handshake and drop the connection, as a real peer does
                // (a WebSocket client waits up to a second for the server to drop it).
                await link.Raw.ExpectCloseAsync();
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                // Aborted by the multiplexer after its close frame: closed all the same.
            }
            await link.Raw.DisposeAsync();

            LinkCloseInfo info;
            try
            {
                info = await link.Run.WaitAsync(Timeouts.Default);
            }
            catch (Exception e)
            {
                return ($"RunAsync threw {e.GetType().Name}: {e.Message}", 0);
            }

            return (Check(info), info.Code);
        }
        finally
        {
            await link.DisposeAsync();
        }

        string? Check(LinkCloseInfo info)
        {
            var expected = Judge(messages, kind == TransportKind.WebSocket);
            var describe = $"{kind} scenario {index} ({string.Join(" | ", messages.Select(m => (m.IsText ? "text:" : "") + Convert.ToHexString(m.Bytes)))}) closed with {info}";
            if (expected.CodecCloseCode is { } codecCode)
            {
                if (!ProtocolCloseCodes.Contains(info.Code))
                {
                    return $"{describe}; expected a protocol close code";
                }
                if (expected.OnlyLinkFramesBefore && info.Code != codecCode)
                {
                    return $"{describe}; expected {codecCode}";
                }
            }
            else if (expected.AllFramesHarmless && (info.Code != CloseCodes.Normal || !info.ByPeer))
            {
                return $"{describe}; expected our own clean close";
            }
            else if (info.Code != CloseCodes.Normal && !ProtocolCloseCodes.Contains(info.Code))
            {
                return $"{describe}; expected a clean close or a protocol close code";
            }
            return null;
        }
    }

    private static bool IsTransportFailure(Exception e) =>
        e is IOException or WebSocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException;

    [Theory]
    [InlineData(TransportKind.WebSocket, 2_500)]
    [InlineData(TransportKind.Stream, 1_000)]
    public async Task Random_input_through_a_real_multiplexer_always_ends_in_a_close_code(TransportKind kind, int scenarios)
    {
        var rng = new Random(kind == TransportKind.WebSocket ? 77 : 78);
        var cases = Enumerable.Range(0, scenarios).Select(i =>
        {
            var messages = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => RandomMessage(rng, kind == TransportKind.WebSocket)).ToArray();
            // Both ends of an agent link: one accepts OPENs, the other refuses them with 1008.
            var options = i % 3 == 0 ? MuxPair.ServerOptions : MuxPair.AgentOptions;
            return (Index: i, Messages: messages, Options: options);
        }).ToArray();

        var failures = new List<string>();
        var closeCodes = new Dictionary<int, int>();
        var messageCount = cases.Sum(c => c.Messages.Length);
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (c, _) =>
        {
            var (problem, code) = await RunScenarioAsync(kind, c.Index, c.Messages, c.Options);
            lock (failures)
            {
                closeCodes[code] = closeCodes.GetValueOrDefault(code) + 1;
                if (problem is not null)
                {
                    failures.Add(problem);
                }
            }
        }).WaitAsync(Timeouts.Bulk);

        Assert.True(failures.Count == 0, $"{failures.Count} of {scenarios} scenarios failed:\n" + string.Join('\n', failures.Take(10)));
        Assert.True(messageCount > scenarios * 2, $"only {messageCount} messages");
        // The input reaches every way a link can end, or it proves little.
        var expectedCodes = new[] { CloseCodes.Normal, CloseCodes.ProtocolError, CloseCodes.PolicyViolation, CloseCodes.MessageTooBig }
            .Concat(kind == TransportKind.WebSocket ? new[] { CloseCodes.UnsupportedData } : Array.Empty<int>());
        var seen = string.Join(", ", closeCodes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}: {kv.Value}"));
        output.WriteLine($"{scenarios} links, {messageCount} messages; close codes: {seen}");
        Assert.All(expectedCodes, code => Assert.True(closeCodes.GetValueOrDefault(code) >= 10, $"close codes seen: {seen}"));
    }
}
