using Connect.Host.Draining;

namespace Connect.Admin.Tests;

/// <summary>
/// The cluster role that carries a node's tunnel URL (base64url without padding, so it fits HOCON unquoted): the roles
/// below were written by the earlier hand-written encoder, so nodes of both versions read each other's roles.
/// </summary>
public sealed class TunnelUrlRoleTests
{
    public static TheoryData<string, string> Roles => new()
    {
        { "ws://127.0.0.1:7070", "tunnel-url-d3M6Ly8xMjcuMC4wLjE6NzA3MA" },
        // Its base64 holds '+' and '/', which base64url writes as '-' and '_'.
        { "wss://node-1.example.com:443/v1/tunnel?a=b~>>?", "tunnel-url-d3NzOi8vbm9kZS0xLmV4YW1wbGUuY29tOjQ0My92MS90dW5uZWw_YT1ifj4-Pw" },
        { "wss://ü.example:7070", "tunnel-url-d3NzOi8vw7wuZXhhbXBsZTo3MDcw" },
    };

    [Theory]
    [MemberData(nameof(Roles))]
    public void A_tunnel_url_round_trips_through_its_role_as_before(string url, string role)
    {
        Assert.Equal(role, NodeLifecycle.TunnelUrlRole(url));
        Assert.Equal(url, NodeLifecycle.FromTunnelUrlRole(role));
    }

    [Theory]
    [InlineData("tunnel-url-a")]
    [InlineData("tunnel-url-***")]
    [InlineData("tunnel-url-d3M6Ly8x!MjcuMC4wLjE6NzA3MA")]
    public void A_role_that_is_not_base64url_yields_no_url(string role) => Assert.Null(NodeLifecycle.FromTunnelUrlRole(role));
}
