using System.Buffers;
using System.Net;
using System.Text;
using Connect.Proxy.Forwarding;
using Connect.Tunnel.Targets;

namespace Connect.EndToEnd.Tests.Security;

/// <summary>
/// The CONNECT request head parsed directly from bytes (no listener): the authority forms RFC 9112 allows, and the
/// ones an attacker sends instead (no port, port 0, userinfo, an absolute URI, control characters, oversized heads).
/// </summary>
public sealed class ConnectRequestParserTests
{
    private const int MaxLine = 256;
    private const int MaxHead = 1024;

    private static ConnectRequestParser.Result Parse(string head) => Parse(Encoding.UTF8.GetBytes(head));

    private static ConnectRequestParser.Result Parse(byte[] bytes) =>
        ConnectRequestParser.TryParse(new ReadOnlySequence<byte>(bytes), MaxLine, MaxHead);

    private static ConnectRequestParser.Result ParseTarget(string authority) => Parse($"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");

    [Theory]
    [InlineData("app.internal:443")]
    [InlineData("APP.internal.:443")]
    [InlineData("10.0.0.1:1")]
    [InlineData("localhost:65535")]
    [InlineData("[::1]:8080")]
    [InlineData("[fd00::1]:22")]
    [InlineData("[::ffff:10.0.0.1]:80")]
    public void A_valid_authority_is_parsed_verbatim(string authority)
    {
        var result = ParseTarget(authority);
        Assert.Equal(ConnectRequestParser.Status.Parsed, result.Status);
        Assert.Equal(authority, result.Request!.Authority);
        Assert.Equal("HTTP/1.1", result.Request.Version);
        Assert.True(ConnectRequestParser.IsValidAuthority(authority, out var problem));
        Assert.Empty(problem);
    }

    [Theory]
    [InlineData("app.internal", "must be host:port")] // no port
    [InlineData("app.internal:", "must be host:port")]
    [InlineData(":443", "must be host:port")]
    [InlineData("app.internal:0", "must be host:port")]
    [InlineData("app.internal:65536", "must be host:port")]
    [InlineData("app.internal:99999999999", "must be host:port")]
    [InlineData("app.internal:-1", "must be host:port")]
    [InlineData("app.internal:+443", "must be host:port")]
    [InlineData("app.internal:0x1bb", "must be host:port")]
    [InlineData("user:pass@app.internal:443", "must be host:port")] // userinfo with a colon
    [InlineData("user@app.internal:443", "characters a host name cannot have")] // userinfo
    [InlineData("::1:443", "must be host:port")] // IPv6 without brackets
    [InlineData("[::1:443", "must be host:port")]
    [InlineData("::1]:443", "must be host:port")]
    [InlineData("http://app.internal:443", "must be host:port")] // absolute URI instead of authority
    [InlineData("http://app.internal:443/", "must be host:port")]
    [InlineData("app.internal/x:443", "characters a host name cannot have")]
    [InlineData("app.internal?x:443", "characters a host name cannot have")]
    [InlineData("app.internal#x:443", "characters a host name cannot have")]
    [InlineData("app.internal\\x:443", "characters a host name cannot have")]
    [InlineData("app\tinternal:443", "characters a host name cannot have")]
    [InlineData("app\u007finternal:443", "characters a host name cannot have")]
    [InlineData("app\u0000internal:443", "characters a host name cannot have")]
    public void A_bad_authority_is_a_400_naming_it(string authority, string expected)
    {
        var result = ParseTarget(authority);
        Assert.Equal(ConnectRequestParser.Status.Error, result.Status);
        Assert.Equal(HttpStatusCode.BadRequest, result.ErrorStatus);
        Assert.Contains(expected, result.ErrorReason, StringComparison.Ordinal);
        Assert.Null(result.Request);
        Assert.False(ConnectRequestParser.IsValidAuthority(authority, out var problem));
        Assert.Equal(result.ErrorReason, problem);
    }

    [Fact]
    public void An_overlong_host_is_refused_and_the_reason_is_truncated()
    {
        var authority = new string('a', 254) + ":443";
        Assert.False(ConnectRequestParser.IsValidAuthority(authority, out var problem));
        Assert.Contains("must be host:port", problem, StringComparison.Ordinal);
        Assert.Contains(new string('a', 80) + "...", problem, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('a', 81), problem, StringComparison.Ordinal);
        Assert.True(ConnectRequestParser.IsValidAuthority(new string('a', 253) + ":443", out _));
    }

    [Theory]
    [InlineData("connect app.internal:443 HTTP/1.1", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")] // methods are case-sensitive
    [InlineData("GET http://app.internal/ HTTP/1.1", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")]
    [InlineData("CONNECT app.internal:443", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")]
    [InlineData("CONNECT  app.internal:443 HTTP/1.1", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")]
    [InlineData("CONNECT app internal:443 HTTP/1.1", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")]
    [InlineData("CONNECT app.internal:443 HTTP/1.1 ", HttpStatusCode.BadRequest, "expected 'CONNECT host:port HTTP/1.1'")]
    [InlineData("CONNECT app.internal:443 HTTP/2.0", HttpStatusCode.HttpVersionNotSupported, "unsupported protocol version 'HTTP/2.0'")]
    [InlineData("CONNECT app.internal:443 http/1.1", HttpStatusCode.HttpVersionNotSupported, "unsupported protocol version")]
    [InlineData("CONNECT app.internal:443 HTTP/0.9", HttpStatusCode.HttpVersionNotSupported, "unsupported protocol version")]
    public void A_bad_request_line_is_refused(string line, HttpStatusCode status, string expected)
    {
        var result = Parse(line + "\r\n\r\n");
        Assert.Equal(ConnectRequestParser.Status.Error, result.Status);
        Assert.Equal(status, result.ErrorStatus);
        Assert.Contains(expected, result.ErrorReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Http_1_0_is_accepted()
    {
        var result = Parse("CONNECT app.internal:443 HTTP/1.0\r\n\r\n");
        Assert.Equal(ConnectRequestParser.Status.Parsed, result.Status);
        Assert.Equal("HTTP/1.0", result.Request!.Version);
    }

    [Theory]
    [InlineData("")]
    [InlineData("CONNECT app.internal:443 HTTP/1.1")]
    [InlineData("CONNECT app.internal:443 HTTP/1.1\r\nHost: app.internal:443\r\n")]
    [InlineData("CONNECT app.internal:443 HTTP/1.1\r\n\r")]
    public void A_truncated_head_waits_for_more(string head)
    {
        var result = Parse(head);
        Assert.Equal(ConnectRequestParser.Status.NeedMore, result.Status);
        Assert.Equal(0, result.Consumed);
    }

    [Fact]
    public void A_request_line_over_the_limit_is_a_414_before_the_head_ends()
    {
        var partial = Parse("CONNECT " + new string('a', MaxLine) + ":443");
        Assert.Equal(HttpStatusCode.RequestUriTooLong, partial.ErrorStatus);
        Assert.Contains($"longer than {MaxLine} bytes", partial.ErrorReason, StringComparison.Ordinal);
        var whole = Parse("CONNECT " + new string('a', MaxLine) + ":443 HTTP/1.1\r\n\r\n");
        Assert.Equal(HttpStatusCode.RequestUriTooLong, whole.ErrorStatus);
    }

    [Fact]
    public void A_head_over_the_limit_is_a_431_whether_or_not_it_has_ended()
    {
        var headers = string.Concat(Enumerable.Range(0, 40).Select(i => $"X-Filler-{i}: {new string('x', 30)}\r\n"));
        var partial = Parse("CONNECT app.internal:443 HTTP/1.1\r\n" + headers);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, partial.ErrorStatus);
        var whole = Parse("CONNECT app.internal:443 HTTP/1.1\r\n" + headers + "\r\n");
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, whole.ErrorStatus);
        Assert.Contains($"larger than {MaxHead} bytes", whole.ErrorReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_are_a_400()
    {
        var bytes = Encoding.ASCII.GetBytes("CONNECT app.internal:443 HTTP/1.1\r\n\r\n");
        bytes[10] = 0xFF;
        var result = Parse(bytes);
        Assert.Equal(HttpStatusCode.BadRequest, result.ErrorStatus);
        Assert.Contains("not valid text", result.ErrorReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_non_ascii_host_passes_the_parser_and_is_refused_by_the_host_check_that_follows()
    {
        // The parser checks the authority's shape; the destination check (TargetHost, used by DestinationPolicy) refuses the name.
        var result = ParseTarget("exämple.internal:443");
        Assert.Equal(ConnectRequestParser.Status.Parsed, result.Status);
        Assert.True(TargetAddress.TryParse(result.Request!.Authority, out var host, out _));
        Assert.False(TargetHost.TryParse(host, out _, out var error));
        Assert.Contains("punycode", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Proxy-Authorization : Basic x")]
    [InlineData(": no name")]
    [InlineData("No colon here")]
    [InlineData(" Proxy-Authorization: Basic x")] // obsolete line folding
    [InlineData("Proxy\tAuthorization: Basic x")]
    public void A_malformed_header_line_is_a_400(string header)
    {
        var result = Parse("CONNECT app.internal:443 HTTP/1.1\r\n" + header + "\r\n\r\n");
        Assert.Equal(HttpStatusCode.BadRequest, result.ErrorStatus);
        Assert.Contains("malformed header line 1", result.ErrorReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Headers_are_case_insensitive_repeats_are_joined_and_bytes_after_the_head_are_left_for_the_tunnel()
    {
        var result = Parse("CONNECT app.internal:443 HTTP/1.1\r\nproxy-authorization:   Basic abc  \r\nX-A: 1\r\nx-a: 2\r\n\r\n\u0016\u0003\u0001");
        Assert.Equal(ConnectRequestParser.Status.Parsed, result.Status);
        Assert.Equal("Basic abc", result.Request!.ProxyAuthorization);
        Assert.Equal("1, 2", result.Request.Headers["X-A"]);
        Assert.Equal(Encoding.UTF8.GetByteCount("CONNECT app.internal:443 HTTP/1.1\r\nproxy-authorization:   Basic abc  \r\nX-A: 1\r\nx-a: 2\r\n\r\n"), result.Consumed);
    }

    [Fact]
    public void A_head_split_across_segments_parses_the_same()
    {
        var bytes = Encoding.ASCII.GetBytes("CONNECT [::1]:443 HTTP/1.1\r\nProxy-Authorization: Basic abc\r\n\r\n");
        var first = new Segment(bytes.AsMemory(0, 20));
        var last = first.Append(bytes.AsMemory(20));
        var result = ConnectRequestParser.TryParse(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length), MaxLine, MaxHead);
        Assert.Equal(ConnectRequestParser.Status.Parsed, result.Status);
        Assert.Equal("[::1]:443", result.Request!.Authority);
        Assert.Equal(bytes.Length, result.Consumed);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
