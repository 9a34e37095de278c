using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.Cluster.Tests;

/// <summary>
/// The order a node stops in: the drain first (public listeners closed, requests finished), then Akka leaves the
/// cluster and hands its entities off, and only then Kestrel stops, so the admin listener (probes, metrics) still
/// answers during the leave. Observed from inside Akka's own coordinated shutdown, at its cluster-leave phase.
/// </summary>
public sealed class StopOrderTests
{
    private static readonly Dictionary<string, string?> QuickDrain = new() { ["Connect:Drain:ProxyGrace"] = "00:00:01" };

    private sealed record Observed(HttpStatusCode? Healthz, HttpStatusCode? Metrics, bool ProxyRefused);

    private static async Task<HttpStatusCode?> GetAsync(HttpClient http, string url)
    {
        try
        {
            using var response = await http.GetAsync(url);
            return response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null; // nothing answers: refused, reset or timed out
        }
    }

    private static async Task<bool> RefusedAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(5));
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
    }

    [Fact]
    public async Task The_admin_listener_answers_while_the_node_leaves_the_cluster_after_the_public_listeners_closed()
    {
        await using var first = await TestNode.StartAsync(settings: QuickDrain);
        var leaving = await TestNode.StartAsync(seeds: [first.Address], settings: QuickDrain);
        try
        {
            await leaving.WaitMembersUpAsync(2, TimeSpan.FromSeconds(30));
            var adminPort = leaving.AdminPort;
            var proxyPort = leaving.ProxyPort;
            var seen = new TaskCompletionSource<Observed>(TaskCreationOptions.RunContinuationsAsynchronously);
            CoordinatedShutdown.Get(leaving.Services.GetRequiredService<ActorSystem>()).AddTask(CoordinatedShutdown.PhaseClusterLeave, "observe-stop-order", async () =>
            {
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
                seen.TrySetResult(new Observed(
                    await GetAsync(http, $"http://127.0.0.1:{adminPort}/healthz"),
                    await GetAsync(http, $"http://127.0.0.1:{adminPort}/metrics"),
                    await RefusedAsync(proxyPort)));
                return Akka.Done.Instance;
            });

            await leaving.StopAsync(); // as SIGTERM does: the host stops

            var observed = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(observed.ProxyRefused, "the proxy port still accepted connections when Akka left: the drain had not closed it");
            Assert.Equal(HttpStatusCode.OK, observed.Healthz);
            Assert.Equal(HttpStatusCode.OK, observed.Metrics);
            // And the leave completed: the other node sees one member.
            await first.WaitMembersUpAsync(1, TimeSpan.FromSeconds(30));
        }
        finally
        {
            await leaving.DisposeAsync();
        }
    }
}
