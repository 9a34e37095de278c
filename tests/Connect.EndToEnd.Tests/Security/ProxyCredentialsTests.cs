using System.Text;
using Connect.Proxy;
using Connect.Proxy.Auth;

namespace Connect.EndToEnd.Tests.Security;

/// <summary>
/// <c>Proxy-Authorization: Basic base64(session:token)</c> parsed directly: every malformed header gets a reason, and
/// no reason ever repeats what the client sent (a swapped or truncated header may hold the token).
/// </summary>
public sealed class ProxyCredentialsTests
{
    private const string Secret = "S3cret/Token+With=Odd:Chars";

    private static string Basic(string credentials) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials));

    [Theory]
    [InlineData("Basic")]
    [InlineData("basic")]
    [InlineData("BASIC")]
    [InlineData("bAsIc")]
    public void The_scheme_is_case_insensitive(string scheme)
    {
        var header = scheme + " " + Convert.ToBase64String(Encoding.UTF8.GetBytes("team-a-1:tok"));
        var parsed = ProxyCredentials.TryParse(header, out var error, out _);
        Assert.Equal(new ProxyCredentials.Parsed("team-a-1", "tok"), parsed);
        Assert.Equal(ProxyError.None, error);
    }

    [Fact]
    public void Spaces_around_the_credentials_are_ignored_and_the_token_keeps_its_colons()
    {
        var header = "Basic   " + Convert.ToBase64String(Encoding.UTF8.GetBytes("team-a-1:" + Secret)) + "  ";
        Assert.Equal(new ProxyCredentials.Parsed("team-a-1", Secret), ProxyCredentials.TryParse(header, out _, out _));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void A_missing_header_asks_for_credentials(string? header)
    {
        Assert.Null(ProxyCredentials.TryParse(header, out var error, out var reason));
        Assert.Equal(ProxyError.MissingCredentials, error);
        Assert.Contains("Basic base64(session:token)", reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dGVhbS1hLTE6dG9r", "only the Basic scheme")] // no scheme at all
    [InlineData("Bearer dGVhbS1hLTE6dG9r", "only the Basic scheme")]
    [InlineData("Basicx dGVhbS1hLTE6dG9r", "only the Basic scheme")]
    [InlineData(" Basic dGVhbS1hLTE6dG9r", "only the Basic scheme")]
    [InlineData("Basic", "only the Basic scheme")]
    [InlineData("Basic !!!not-base64!!!", "not valid base64")]
    [InlineData("Basic dGVhbS1hLTE6dG9", "not valid base64")] // truncated
    [InlineData("Basic /w==", "not valid UTF-8")] // 0xFF
    [InlineData("Basic ", "must carry session:token")]
    public void A_malformed_header_says_what_is_wrong(string header, string expected)
    {
        Assert.Null(ProxyCredentials.TryParse(header, out var error, out var reason));
        Assert.Equal(ProxyError.InvalidCredentials, error);
        Assert.Contains(expected, reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("team-a-1")] // no colon
    [InlineData(":" + Secret)] // empty session
    [InlineData("team-a-1:")] // empty token
    [InlineData(":")]
    public void Session_and_token_are_both_required(string credentials)
    {
        Assert.Null(ProxyCredentials.TryParse(Basic(credentials), out var error, out var reason));
        Assert.Equal(ProxyError.InvalidCredentials, error);
        Assert.Contains("must carry session:token", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("S3cret", reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Secret + ":team-a-1")] // swapped: the session field holds the token
    [InlineData("S3cret token:team-a-1")]
    [InlineData("S3cret-" + "0123456789012345678901234567890123456789012345678901234567890123:team-a-1")] // 71 characters
    [InlineData("-S3cret:team-a-1")]
    [InlineData("S3crët:team-a-1")]
    [InlineData("S3cret\t:team-a-1")]
    public void An_invalid_session_is_refused_without_echoing_it(string credentials)
    {
        Assert.Null(ProxyCredentials.TryParse(Basic(credentials), out var error, out var reason));
        Assert.Equal(ProxyError.InvalidCredentials, error);
        Assert.Contains("session name in Proxy-Authorization is not valid", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("S3cr", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void No_reason_repeats_the_header()
    {
        string[] headers = ["Bearer " + Secret, "Basic " + Secret, Basic(Secret), Basic(Secret + ":x"), Basic("x:" + Secret)[..^2]];
        foreach (var header in headers)
        {
            Assert.Null(ProxyCredentials.TryParse(header, out _, out var reason));
            Assert.DoesNotContain("S3cret", reason, StringComparison.Ordinal);
            Assert.DoesNotContain(header.Split(' ')[^1], reason, StringComparison.Ordinal);
        }
    }
}
