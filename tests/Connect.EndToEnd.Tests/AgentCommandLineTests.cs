using Connect.Client;

namespace Connect.EndToEnd.Tests;

/// <summary>The agent's switches (parsed with System.CommandLine) and the rule for which GOAWAY suggestions it follows, as tables.</summary>
public sealed class AgentCommandLineTests
{
    private static readonly Func<string, string?> NoEnvironment = _ => null;

    private static AgentOptions Parse(params string[] args) => AgentCommandLine.Parse(args, NoEnvironment);

    [Fact]
    public void Every_switch_is_parsed()
    {
        var ca = Path.GetTempFileName();
        try
        {
            var options = Parse("--server", "ws://127.0.0.1:7070", "--server", "https://b.example", "--session", "demo-1", "--token", "t0k",
                "--allow", "localhost:*", "--allow", "*.internal:443", "--links", "2", "--ca-file", ca, "--insecure",
                "--status-interval", "0.5", "--shutdown-grace", "12", "--follow-suffix", "connect.example.com");
            Assert.Equal([new Uri("ws://127.0.0.1:7070/v1/tunnel"), new Uri("wss://b.example/v1/tunnel")], options.Servers);
            Assert.Equal("demo-1", options.Session);
            Assert.Equal("t0k", options.Token);
            Assert.True(options.Allow.Allows("api.internal", 443));
            Assert.False(options.Allow.IsDefault);
            Assert.Equal(2, options.Links);
            Assert.Equal(ca, options.CaFile);
            Assert.True(options.InsecureSkipVerify);
            Assert.Equal(TimeSpan.FromSeconds(0.5), options.StatusInterval);
            Assert.Equal(TimeSpan.FromSeconds(12), options.ShutdownGrace);
            Assert.Equal([".connect.example.com"], options.FollowSuffixes);
        }
        finally
        {
            File.Delete(ca);
        }
    }

    [Fact]
    public void Defaults_and_the_token_from_the_environment()
    {
        var options = AgentCommandLine.Parse(["--server", "ws://127.0.0.1:7070", "--session", "demo"], name => name == AgentCommandLine.TokenVariable ? "from-env" : null);
        Assert.Equal("from-env", options.Token);
        Assert.Equal(1, options.Links);
        Assert.True(options.Allow.IsDefault);
        Assert.Equal(TimeSpan.FromSeconds(10), options.StatusInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ShutdownGrace);
        Assert.False(options.InsecureSkipVerify);
        Assert.Empty(options.FollowSuffixes);
    }

    [Fact]
    public void A_token_starting_with_at_is_a_value_not_a_response_file()
    {
        Assert.Equal("@not-a-file", Parse("--server", "ws://127.0.0.1:7070", "--session", "demo", "--token", "@not-a-file").Token);
    }

    [Theory]
    [InlineData("unknown argument '--bogus'", "--bogus")]
    [InlineData("unknown argument 'stray'", "stray")]
    [InlineData("--session", "--session")]
    [InlineData("--links must be 1..8, got '9'", "--links", "9")]
    [InlineData("--links must be 1..8, got 'two'", "--links", "two")]
    [InlineData("--status-interval must be a number of seconds, got '-1'", "--status-interval", "-1")]
    [InlineData("--shutdown-grace must be a number of seconds, got 'soon'", "--shutdown-grace", "soon")]
    [InlineData("--ca-file '/nonexistent/ca.pem' does not exist", "--ca-file", "/nonexistent/ca.pem")]
    [InlineData("--server 'ftp://x' must use ws://, wss://, http:// or https://", "--server", "ftp://x")]
    [InlineData("--follow-suffix '*.example.com' is not a domain suffix", "--follow-suffix", "*.example.com")]
    public void Bad_switches_are_refused_naming_the_problem(string expected, params string[] extra)
    {
        var args = new List<string> { "--server", "ws://127.0.0.1:7070", "--session", "demo", "--token", "t" };
        if (extra[0] is "--session")
        {
            args = ["--server", "ws://127.0.0.1:7070", "--token", "t", "--session"];
        }
        else
        {
            args.AddRange(extra);
        }
        var error = Assert.Throws<ArgumentException>(() => AgentCommandLine.Parse(args, NoEnvironment));
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("a token is required", "--server", "ws://127.0.0.1:7070", "--session", "demo")]
    [InlineData("at least one --server is required", "--session", "demo", "--token", "t")]
    [InlineData("--session is required", "--server", "ws://127.0.0.1:7070", "--token", "t")]
    [InlineData("is not a valid name", "--server", "ws://127.0.0.1:7070", "--session", "bad name", "--token", "t")]
    public void Missing_or_invalid_required_values_are_refused(string expected, params string[] args)
    {
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => AgentCommandLine.Parse(args, NoEnvironment)).Message);
    }

    [Theory]
    // Same scheme and a configured host: followed (port and path may differ: another node on the same host or name).
    [InlineData("wss://node-1.example.com:8443", "wss://node-2.example.com:7443", true)]
    [InlineData("wss://node-1.example.com:8443", "wss://NODE-1.example.com:9443", true)]
    [InlineData("wss://127.0.0.1:7070", "wss://127.0.0.1:7071", true)]
    [InlineData("ws://127.0.0.1:7070", "ws://127.0.0.1:7071", true)]
    [InlineData("ws://127.0.0.1:7070", "wss://127.0.0.1:7071", true)]
    [InlineData("wss://node-1.example.com", "wss://a.connect.example.com", true)]
    [InlineData("wss://node-1.example.com", "https://b.connect.example.com:443", true)]
    // Never from TLS to plain, never a host the customer did not name, never a look-alike of the suffix.
    [InlineData("wss://127.0.0.1:7070", "ws://127.0.0.1:7071", false)]
    [InlineData("wss://127.0.0.1:7070", "http://127.0.0.1:7071", false)]
    [InlineData("wss://node-1.example.com", "wss://evil.example", false)]
    [InlineData("wss://node-1.example.com", "wss://connect.example.com.evil.example", false)]
    [InlineData("wss://node-1.example.com", "wss://evilconnect.example.com", false)]
    [InlineData("wss://node-1.example.com", "wss://user:pw@node-1.example.com", false)]
    [InlineData("wss://node-1.example.com", "not a url", false)]
    [InlineData("wss://node-1.example.com", "ftp://node-1.example.com", false)]
    public void A_GOAWAY_suggestion_is_followed_only_with_TLS_kept_and_a_trusted_host(string configured, string suggestion, bool followed)
    {
        var policy = new SuggestionPolicy([AgentCommandLine.ParseServer(configured), AgentCommandLine.ParseServer("wss://node-2.example.com")], [SuggestionPolicy.NormaliseSuffix(".connect.example.com")]);
        if (configured.StartsWith("ws://", StringComparison.Ordinal))
        {
            policy = new SuggestionPolicy([AgentCommandLine.ParseServer(configured)], []);
        }
        Assert.Equal(followed, policy.TryAccept(suggestion, out _, out var why));
        Assert.Equal(followed, why.Length == 0);
    }
}
