using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Connect.Host;
using Connect.Testing;
using Connect.Tunnel.Frames;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// One node with tenant-bound tokens (team-a-*, team-b-*), a real agent serving team-b-x, and log capture: tokens reach
/// only their tenant's sessions, entries must say which sessions and scopes they grant, and what may be a token is
/// never repeated in a log line or a response body.
/// </summary>
public sealed class TrustBoundaryTests(TrustBoundaryTests.Fixture fixture) : IClassFixture<TrustBoundaryTests.Fixture>
{
    /// <summary>A token as the documented recipe makes them (openssl rand -base64 32 | tr -d '/+='): 43 letters and digits, a valid session name too.</summary>
    public const string RecipeToken = "Q7bX2mK9pL4vR8sT1wY6zA3cE5gH0jN2qU7xB4dF9kM";

    /// <summary>An unknown token of the same shape.</summary>
    public const string UnknownRecipeToken = "Z1yX2wV3uT4sR5qP6oN7mL8kJ9iH0gF1eD2cB3aZ4yX";

    private const string TeamAToken = "team-a-token-abcdefghij0123";
    private const string TeamBToken = "team-b-token-abcdefghij0123";

    public sealed class Fixture : IAsyncLifetime
    {
        public TestNode Node { get; private set; } = null!;

        public TestTargets Targets { get; private set; } = null!;

        public TestAgent TeamB { get; private set; } = null!;

        public LogCapture Logs { get; } = new();

        public async Task InitializeAsync()
        {
            Targets = await TestTargets.StartAsync();
            Node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Trace",
                ["Logging:LogLevel:Connect"] = "Trace",
                ["Connect:Auth:Tokens:1:Name"] = "team-a",
                ["Connect:Auth:Tokens:1:Token"] = TeamAToken,
                ["Connect:Auth:Tokens:1:Sessions:0"] = "team-a-*",
                ["Connect:Auth:Tokens:1:Scopes:0"] = "agent",
                ["Connect:Auth:Tokens:1:Scopes:1"] = "proxy",
                ["Connect:Auth:Tokens:2:Name"] = "team-b",
                ["Connect:Auth:Tokens:2:Token"] = TeamBToken,
                ["Connect:Auth:Tokens:2:Sessions:0"] = "team-b-*",
                ["Connect:Auth:Tokens:2:Scopes:0"] = "agent",
                ["Connect:Auth:Tokens:2:Scopes:1"] = "proxy",
                ["Connect:Auth:Tokens:3:Name"] = "recipe",
                ["Connect:Auth:Tokens:3:Sha256"] = Connect.Host.Security.TokenStore.HashHex(RecipeToken),
                ["Connect:Auth:Tokens:3:Sessions:0"] = "recipe-*",
                ["Connect:Auth:Tokens:3:Scopes:0"] = "agent",
                ["Connect:Auth:Tokens:3:Scopes:1"] = "proxy",
            }, logs: Logs);
            TeamB = await TestAgent.StartAsync("team-b-x", [Node.TunnelUri], token: TeamBToken);
        }

        public async Task DisposeAsync()
        {
            await TeamB.DisposeAsync();
            await Node.DisposeAsync();
            await Targets.DisposeAsync();
        }
    }

    private TestNode Node => fixture.Node;

    [Fact]
    public async Task A_team_a_token_can_neither_attach_to_nor_proxy_into_team_b_x()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // team-b-x is served (team B's own token gets through), so a refusal below is the token's scope, not a missing agent.
        using (var own = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{fixture.Targets.EchoPort}", ProxyClient.Basic("team-b-x", TeamBToken), timeout.Token))
        {
            Assert.Equal(200, own.Status);
        }

        // Attach: a link for team-b-x with team A's token is refused before the upgrade (a raw connect.v1 client, so
        // the answer is the node's and not the agent's retry policy).
        using (var intruder = new ClientWebSocket())
        {
            intruder.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
            intruder.Options.SetRequestHeader("Authorization", $"Bearer {TeamAToken}");
            intruder.Options.CollectHttpResponseDetails = true;
            await Assert.ThrowsAsync<WebSocketException>(() => intruder.ConnectAsync(new Uri($"ws://127.0.0.1:{Node.TunnelPort}/v1/tunnel?session=team-b-x"), timeout.Token));
            Assert.Equal(HttpStatusCode.Forbidden, intruder.HttpStatusCode);
        }
        Assert.Single((await Node.GetSessionAsync("team-b-x")).Links);

        using (var connect = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{fixture.Targets.EchoPort}", ProxyClient.Basic("team-b-x", TeamAToken), timeout.Token))
        {
            Assert.Equal(403, connect.Status);
        }
        using var client = ProxyClient.Http(Node.ProxyPort, "team-b-x", TeamAToken);
        var response = await client.GetAsync($"http://127.0.0.1:{fixture.Targets.HttpPort}/hello", timeout.Token);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    public static TheoryData<string, string?> EntriesMissingAField => new()
    {
        { "Sessions", null },
        { "Scopes", null },
    };

    [Theory]
    [MemberData(nameof(EntriesMissingAField))]
    public void A_token_entry_without_Sessions_or_Scopes_stops_start_up_naming_the_entry(string missing, string? _)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Connect:Cluster:DataSecret"] = TestNode.DataSecret,
            ["Connect:Auth:Tokens:0:Name"] = "customer-7 agents",
            ["Connect:Auth:Tokens:0:Token"] = "customer-7-token-0123456789",
        };
        if (missing != "Sessions")
        {
            settings["Connect:Auth:Tokens:0:Sessions:0"] = "customer-7-*";
        }
        if (missing != "Scopes")
        {
            settings["Connect:Auth:Tokens:0:Scopes:0"] = "agent";
        }
        var refused = Assert.Throws<InvalidOperationException>(() => ConnectNode.Build([], settings));
        Assert.Contains("'customer-7 agents'", refused.Message);
        Assert.Contains($"has no {missing}", refused.Message);
    }

    [Theory]
    [InlineData("set-me-through-Connect__Cluster__DataSecret", "placeholder")]
    [InlineData("short-secret-123", "is 16 characters")]
    public void A_placeholder_or_short_data_secret_stops_start_up(string secret, string expected)
    {
        var refused = Assert.Throws<InvalidOperationException>(() => ConnectNode.Build([], new Dictionary<string, string?>
        {
            ["Connect:Cluster:DataSecret"] = secret,
            ["Connect:Auth:Tokens:0:Name"] = "tests",
            ["Connect:Auth:Tokens:0:Token"] = TestNode.Token,
            ["Connect:Auth:Tokens:0:Sessions:0"] = "team-*",
            ["Connect:Auth:Tokens:0:Scopes:0"] = "agent",
        }));
        Assert.Contains("Connect:Cluster:DataSecret", refused.Message);
        Assert.Contains(expected, refused.Message);
        Assert.DoesNotContain(secret, refused.Message);
    }

    [Fact]
    public void A_token_for_every_session_is_named_in_a_warning_at_start_up()
    {
        // TestNode's own "tests" token has Sessions ["*"]; the tenant tokens do not.
        var warnings = fixture.Logs.Lines.Where(l => l.Contains("[6001]")).ToList();
        Assert.Contains(warnings, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("'tests' may use every session"));
        Assert.DoesNotContain(warnings, l => l.Contains("'team-a'"));
    }

    [Theory]
    [InlineData(RecipeToken, "recipe-1", "look swapped")]
    [InlineData(UnknownRecipeToken, "recipe-1", "invalid token")]
    [InlineData(RecipeToken, TeamAToken, "look swapped")] // a valid token in each field: the 403 would name the "session"
    public async Task A_token_in_the_session_field_is_never_logged_or_echoed(string token, string tokenField, string expected)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var bodies = new List<string>();
        // The fields swapped: token:session.
        var swapped = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{token}:{tokenField}"));

        using (var connect = await ProxyClient.ConnectAsync(Node.ProxyPort, $"127.0.0.1:{fixture.Targets.EchoPort}", swapped, timeout.Token))
        {
            Assert.Equal(407, connect.Status);
            bodies.Add(connect.Head + connect.Body);
        }

        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(IPAddress.Loopback, Node.ProxyPort, timeout.Token);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var request = $"GET http://127.0.0.1:{fixture.Targets.HttpPort}/hello HTTP/1.1\r\nHost: 127.0.0.1:{fixture.Targets.HttpPort}\r\nProxy-Authorization: {swapped}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
            var (status, head, body) = await ProxyClient.ReadResponseHeadAsync(stream, timeout.Token);
            Assert.Equal(407, status);
            bodies.Add(head + body);
        }

        using (var http = new HttpClient())
        {
            // The tunnel endpoint with ?session=TOKEN and the session name as the bearer token (swapped); a plain GET
            // with the upgrade headers so the refusal's body can be read.
            using var upgrade = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{Node.TunnelPort}/v1/tunnel?session={token}");
            upgrade.Headers.Connection.Add("Upgrade");
            upgrade.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
            upgrade.Headers.Add("Sec-WebSocket-Version", "13");
            upgrade.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
            upgrade.Headers.Add("Sec-WebSocket-Protocol", ProtocolLimits.SubProtocol);
            upgrade.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", tokenField);
            using var response = await http.SendAsync(upgrade, timeout.Token);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            bodies.Add(response.Headers + (await response.Content.ReadAsStringAsync(timeout.Token)));
        }

        Assert.All(bodies, body => Assert.Contains(expected, body));
        Assert.All(bodies, body => Assert.DoesNotContain(token, body));
        await Eventually.UntilAsync(() => fixture.Logs.All.Contains("[1003]"), "the tunnel endpoint logged its refusal", TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(token, fixture.Logs.All);
    }
}
