using System.Buffers;
using System.Net;
using System.Text;
using Connect.Tunnel.Targets;

namespace Connect.Proxy.Forwarding;

/// <summary>A parsed <c>CONNECT host:port HTTP/1.1</c> request head (RFC 9110 section 9.3.6).</summary>
public sealed record ConnectRequest(string Authority, string Version, string? ProxyAuthorization, IReadOnlyDictionary<string, string> Headers);

/// <summary>Parses a CONNECT request head off the raw connection, with the size limits that answer 414 and 431.</summary>
public static class ConnectRequestParser
{
    private static ReadOnlySpan<byte> HeadEnd => "\r\n\r\n"u8;

    public enum Status
    {
        NeedMore,
        Parsed,
        Error,
    }

    public readonly record struct Result(Status Status, ConnectRequest? Request, long Consumed, HttpStatusCode ErrorStatus, string? ErrorReason)
    {
        public static Result Fail(HttpStatusCode status, string reason) => new(Status.Error, null, 0, status, reason);
    }

    public static Result TryParse(ReadOnlySequence<byte> input, int maxRequestLine, int maxHead)
    {
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, HeadEnd, advancePastDelimiter: true))
        {
            var lineEnd = input.PositionOf((byte)'\n');
            if (lineEnd is null && input.Length > maxRequestLine)
            {
                return Result.Fail(HttpStatusCode.RequestUriTooLong, $"request line longer than {maxRequestLine} bytes");
            }
            if (input.Length > maxHead)
            {
                return Result.Fail(HttpStatusCode.RequestHeaderFieldsTooLarge, $"request head larger than {maxHead} bytes");
            }
            return new Result(Status.NeedMore, null, 0, 0, null);
        }
        if (head.Length + 4 > maxHead)
        {
            return Result.Fail(HttpStatusCode.RequestHeaderFieldsTooLarge, $"request head larger than {maxHead} bytes");
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(head);
        }
        catch (DecoderFallbackException)
        {
            return Result.Fail(HttpStatusCode.BadRequest, "request head is not valid text");
        }
        var lines = text.Split("\r\n");
        if (lines[0].Length > maxRequestLine)
        {
            return Result.Fail(HttpStatusCode.RequestUriTooLong, $"request line longer than {maxRequestLine} bytes");
        }
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0] != "CONNECT")
        {
            return Result.Fail(HttpStatusCode.BadRequest, "malformed request line; expected 'CONNECT host:port HTTP/1.1'");
        }
        if (parts[2] is not ("HTTP/1.1" or "HTTP/1.0"))
        {
            return Result.Fail(HttpStatusCode.HttpVersionNotSupported, $"unsupported protocol version '{parts[2]}'");
        }
        var authority = parts[1];
        if (!IsValidAuthority(authority, out var problem))
        {
            return Result.Fail(HttpStatusCode.BadRequest, problem);
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            var colon = line.IndexOf(':');
            if (colon <= 0 || line[..colon].Any(c => c is ' ' or '\t' || char.IsControl(c)))
            {
                return Result.Fail(HttpStatusCode.BadRequest, $"malformed header line {i}");
            }
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim();
            headers[name] = headers.TryGetValue(name, out var existing) ? existing + ", " + value : value;
        }
        headers.TryGetValue("Proxy-Authorization", out var proxyAuthorization);
        return new Result(Status.Parsed, new ConnectRequest(authority, parts[2], proxyAuthorization, headers), head.Length + 4, 0, null);
    }

    /// <summary>CONNECT's target is authority-form, host:port, with a port in 1..65535 (RFC 9112 section 3.2.3).</summary>
    public static bool IsValidAuthority(string authority, out string problem)
    {
        problem = string.Empty;
        if (!TargetAddress.TryParse(authority, out var host, out _))
        {
            problem = $"CONNECT target '{Truncate(authority)}' must be host:port with a port from 1 to 65535";
            return false;
        }
        if (host.Any(c => char.IsControl(c) || c is '/' or '@' or '?' or '#' or ' ' or '\\'))
        {
            problem = $"CONNECT target '{Truncate(authority)}' has characters a host name cannot have";
            return false;
        }
        return true;
    }

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
