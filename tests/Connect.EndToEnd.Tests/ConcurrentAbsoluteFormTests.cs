using System.Net;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// Many absolute-form requests at once against an app that speaks HTTP/1.0, closes after every response and has a
/// small accept backlog (issue 12, finding 2: 11 of 500 got 502 ResponseEnded where CONNECT and squid got none).
/// </summary>
public sealed class ConcurrentAbsoluteFormTests(SingleNodeFixture fixture) : IClassFixture<SingleNodeFixture>
{
    private const int Rounds = 10;
    private const int Concurrency = 50;

    [Fact]
    public async Task Concurrent_absolute_form_requests_to_a_closing_HTTP_1_0_app_all_succeed()
    {
        await using var target = Http10Target.StartSocketServer();
        await AssertAllSucceedAsync(target.Port, "/");
    }

    [Fact]
    public async Task Concurrent_absolute_form_requests_to_python_http_server_all_succeed()
    {
        await using var target = await Http10Target.StartPythonAsync();
        if (target is null)
        {
            // python3 is not installed here; the socket-server twin above covers the same behaviour.
            return;
        }
        await AssertAllSucceedAsync(target.Port, "/index.html");
    }

    private async Task AssertAllSucceedAsync(int port, string path)
    {
        using var client = ProxyClient.Http(fixture.Node.ProxyPort, SingleNodeFixture.Session);
        client.DefaultRequestHeaders.ProxyAuthorization = System.Net.Http.Headers.AuthenticationHeaderValue.Parse(ProxyClient.Basic(SingleNodeFixture.Session));
        var failures = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            var results = await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
            {
                using var response = await client.GetAsync($"http://127.0.0.1:{port}{path}");
                var body = await response.Content.ReadAsStringAsync();
                return response.StatusCode == HttpStatusCode.OK && body == Http10Target.Body ? null : $"{(int)response.StatusCode}: {body.Trim()}";
            }));
            failures.AddRange(results.OfType<string>());
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {Rounds * Concurrency} failed; first: {string.Join(" | ", failures.Take(3))}");
    }
}
