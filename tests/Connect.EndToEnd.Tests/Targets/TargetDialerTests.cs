using System.Net;
using System.Net.Sockets;
using Connect.Client;
using Connect.Tunnel.Frames;

namespace Connect.EndToEnd.Tests.Targets;

/// <summary>
/// The agent's allow-list as it is applied: TargetDialer with a fake resolver and a real loopback listener. An address
/// rule is passed by a name only when every address the name resolves to is inside it, and the socket goes to exactly
/// the addresses checked (one lookup, so no DNS rebinding).
/// </summary>
public sealed class TargetDialerTests : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public TargetDialerTests()
    {
        _listener.Start();
    }

    private int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public void Dispose() => _listener.Stop();

    /// <summary>A resolver whose answers the test sets; it counts lookups and can change its answer after the first (rebinding).</summary>
    private sealed class FakeResolver(Dictionary<string, IPAddress[]> answers, IPAddress[]? later = null) : IHostResolver
    {
        public List<string> Lookups { get; } = [];

        public Task<IPAddress[]> ResolveAsync(string name, CancellationToken cancellationToken)
        {
            lock (Lookups)
            {
                Lookups.Add(name);
                if (later is not null && Lookups.Count > 1)
                {
                    return Task.FromResult(later);
                }
            }
            return answers.TryGetValue(name, out var addresses) ? Task.FromResult(addresses) : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound));
        }
    }

    private static IPAddress[] Ips(params string[] addresses) => addresses.Select(IPAddress.Parse).ToArray();

    private TargetDialer Dialer(string allow, FakeResolver resolver) =>
        new(AllowList.Parse([allow.Replace("PORT", Port.ToString())]), resolver, TimeSpan.FromSeconds(10));

    public static TheoryData<string, string, string[], string> Refusals => new()
    {
        // The finding: an octet wildcard must not pass a name that merely starts with matching octets.
        { "10.0.0.*:PORT", "10.0.0.1.evil.example", ["127.0.0.1"], "127.0.0.1 is outside it" },
        // An address rule refuses a name that resolves outside it...
        { "10.0.0.0/8:PORT", "app.example", ["127.0.0.1"], "127.0.0.1 is outside it" },
        // ...or when any one of several addresses is outside it (the dial could land on any of them).
        { "127.0.0.0/8:PORT", "split.example", ["127.0.0.1", "10.1.1.1"], "10.1.1.1 is outside it" },
        { "127.0.0.0/8:PORT", "split6.example", ["127.0.0.1", "::1"], "::1 is outside it" },
        { "[::1]:PORT", "mapped.example", ["::ffff:10.0.0.1"], "10.0.0.1 is outside it" },
        // A name that does not resolve cannot be inside an address rule.
        { "127.0.0.0/8:PORT", "nowhere.example", [], "does not resolve" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_name_passes_an_address_rule_only_when_every_address_is_inside(string allow, string name, string[] addresses, string reason)
    {
        var resolver = new FakeResolver(addresses.Length == 0 ? [] : new() { [name] = Ips(addresses) });
        var result = await Dialer(allow, resolver).DialAsync($"{name}:{Port}");
        Assert.Null(result.Socket);
        Assert.Equal(OpenErrorCode.NotAllowed, result.Error);
        Assert.Contains($"{name}:{Port} is not in the agent's allow-list", result.Reason);
        Assert.Contains(reason, result.Reason);
        Assert.Equal([name], resolver.Lookups);
        Assert.False(_listener.Pending(), "nothing may be dialled for a refused target");
    }

    [Theory]
    [InlineData("127.0.0.0/8:PORT", "app.example", new[] { "127.0.0.1" })]
    [InlineData("127.0.0.1:PORT", "mapped.example", new[] { "::ffff:127.0.0.1" })]
    [InlineData("127.0.0.*:*", "two.example", new[] { "127.0.0.1", "127.0.0.2" })]
    [InlineData("APP.example:PORT", "app.example", new[] { "127.0.0.1" })] // a name rule: any address of the allowed name
    [InlineData("*.example:PORT", "a.b.example", new[] { "127.0.0.1" })]
    [InlineData("*", "any.example", new[] { "127.0.0.1" })]
    public async Task An_allowed_name_is_dialled_at_the_address_that_was_resolved(string allow, string name, string[] addresses)
    {
        var resolver = new FakeResolver(new() { [name] = Ips(addresses) });
        var result = await Dialer(allow, resolver).DialAsync($"{name.ToUpperInvariant()}.:{Port}");
        using var socket = Assert.IsType<Socket>(result.Socket, exactMatch: false);
        using var accepted = await _listener.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(IPAddress.Loopback, ((IPEndPoint)accepted.RemoteEndPoint!).Address.MapToIPv4());
        Assert.Equal([name], resolver.Lookups);
    }

    [Fact]
    public async Task The_socket_goes_to_the_checked_address_even_if_the_name_would_rebind()
    {
        // The first answer is inside the rule; any second lookup would answer an address outside it.
        var resolver = new FakeResolver(new() { ["rebind.example"] = Ips("127.0.0.1") }, later: Ips("10.66.66.66"));
        var result = await Dialer("127.0.0.1:PORT", resolver).DialAsync($"rebind.example:{Port}");
        using var socket = Assert.IsType<Socket>(result.Socket, exactMatch: false);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, Port), socket.RemoteEndPoint);
        Assert.Single(resolver.Lookups);
    }

    [Theory]
    [InlineData("127.0.0.1:PORT", "2130706433")]
    [InlineData("127.0.0.1:PORT", "0177.0.0.1")]
    [InlineData("127.0.0.1:PORT", "0x7f.1")]
    [InlineData("127.0.0.1:PORT", "127.1")]
    [InlineData("127.0.0.1:PORT", "[::ffff:127.0.0.1]")]
    public async Task Numeric_spellings_of_an_allowed_address_are_dialled_without_a_lookup(string allow, string host)
    {
        var resolver = new FakeResolver([]);
        var result = await Dialer(allow, resolver).DialAsync($"{host}:{Port}");
        using var socket = Assert.IsType<Socket>(result.Socket, exactMatch: false);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, Port), socket.RemoteEndPoint);
        Assert.Empty(resolver.Lookups);
    }

    [Theory]
    [InlineData("10.0.0.0/8:PORT", "2130706433")]
    [InlineData("10.0.0.0/8:PORT", "0x7f.1")]
    [InlineData("localhost:PORT", "127.0.0.1")] // a name rule never passes an address
    public async Task Numeric_spellings_outside_the_rules_are_refused(string allow, string host)
    {
        var resolver = new FakeResolver([]);
        var result = await Dialer(allow, resolver).DialAsync($"{host}:{Port}");
        Assert.Null(result.Socket);
        Assert.Equal(OpenErrorCode.NotAllowed, result.Error);
        Assert.Empty(resolver.Lookups);
    }

    [Fact]
    public async Task A_name_no_rule_could_allow_is_refused_without_a_lookup()
    {
        // Only name rules cover this port: resolving would only let the cloud probe the customer's DNS.
        var resolver = new FakeResolver(new() { ["intranet.example"] = Ips("127.0.0.1") });
        var result = await Dialer($"localhost:*, 10.0.0.0/8:1", resolver).DialAsync($"intranet.example:{Port}");
        Assert.Equal(OpenErrorCode.NotAllowed, result.Error);
        Assert.Empty(resolver.Lookups);
    }

    [Theory]
    [InlineData("1.2.3.4.5:80", "numeric IPv4 address but is not one")]
    [InlineData("evil.com@127.0.0.1:80", "contains '@'")]
    [InlineData("no-port", "is not host:port")]
    public async Task Malformed_targets_are_refused_as_bad_targets(string target, string reason)
    {
        var result = await Dialer("*", new FakeResolver([])).DialAsync(target);
        Assert.Equal(OpenErrorCode.BadTarget, result.Error);
        Assert.Contains(reason, result.Reason);
    }

    [Theory]
    // The look-alikes of the finding, through the allow-list's own check (before this change, the first three were allowed).
    [InlineData("10.0.0.*:80", "10.0.0.1.evil.example", 80, false)]
    [InlineData("10.9.8.*:*", "10.9.8.7.nip.io", 8080, false)]
    [InlineData("*.internal:443", "x.internal.evil.com", 443, false)]
    [InlineData("10.0.0.*:80", "10.0.0.1", 80, true)]
    [InlineData("127.0.0.1:*", "0x7f.1", 80, true)]
    [InlineData("*.internal:443", "a.b.internal.", 443, true)]
    public void The_allow_list_check_without_resolution_matches_the_rules(string allow, string host, int port, bool allowed)
    {
        Assert.Equal(allowed, AllowList.Parse([allow]).Allows(host, port));
    }

    [Fact]
    public void A_bad_allow_pattern_stops_the_agent_naming_the_pattern()
    {
        var e = Assert.Throws<ArgumentException>(() => AgentCommandLine.Parse(["--server", "ws://127.0.0.1:1", "--session", "s", "--token", "t", "--allow", "localhost:*,app*.internal:443"], _ => null));
        Assert.Contains("allow pattern 'app*.internal:443'", e.Message);
    }

    [Fact]
    public async Task The_hosts_file_hook_is_read_from_CONNECT_CLIENT_HOSTS_FILE_and_consulted_first()
    {
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(path, ["# test names", "127.0.0.1 App.Test alias.test", "10.9.8.7 app.test   # a second address", ""]);
            var options = AgentCommandLine.Parse(["--server", "ws://127.0.0.1:1", "--session", "s", "--token", "t"], name => name == AgentCommandLine.HostsFileVariable ? path : null);
            var resolver = Assert.IsType<HostsFileResolver>(options.Resolver);
            Assert.Equal(Ips("127.0.0.1", "10.9.8.7"), await resolver.ResolveAsync("app.test", CancellationToken.None));
            Assert.Equal(Ips("127.0.0.1"), await resolver.ResolveAsync("alias.test", CancellationToken.None));
            // Names not in the file go to the system resolver.
            Assert.Contains(IPAddress.Loopback, await resolver.ResolveAsync("localhost", CancellationToken.None));

            await File.WriteAllLinesAsync(path, ["127.0.0.1 ok.test", "not-an-address bad.test"]);
            var e = Assert.Throws<ArgumentException>(() => AgentCommandLine.Parse(["--server", "ws://127.0.0.1:1", "--session", "s", "--token", "t"], name => name == AgentCommandLine.HostsFileVariable ? path : null));
            Assert.Contains($"hosts file '{path}' line 2", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
        var missing = Assert.Throws<ArgumentException>(() => AgentCommandLine.Parse(["--server", "ws://127.0.0.1:1", "--session", "s", "--token", "t"], name => name == AgentCommandLine.HostsFileVariable ? path : null));
        Assert.Contains($"hosts file '{path}' cannot be read", missing.Message);
    }
}
