using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Connect.Cluster.Tests.Support;

/// <summary>
/// The one request of the Kubernetes API that pod discovery makes, answered by Kestrel on loopback: GET
/// <c>/api/v1/namespaces/{namespace}/pods</c> (with an optional <c>labelSelector</c>) returns a PodList of the pods
/// added here, each Running with the given IP and a container port named <c>management</c>. Every request is recorded
/// (path, query, Authorization) so a test can check what the real client sent.
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    public const string Namespace = "connect-test";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, (string Ip, int ManagementPort, Dictionary<string, string> Labels)> _pods = new();

    private FakeKubernetesApi(WebApplication app) => _app = app;

    public ConcurrentQueue<(string Path, string Query, string? Authorization)> Requests { get; } = new();

    public int Port { get; private set; }

    public static async Task<FakeKubernetesApi> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var api = new FakeKubernetesApi(app);
        app.MapGet("/api/v1/namespaces/{ns}/pods", (string ns, HttpRequest request) =>
        {
            api.Requests.Enqueue((request.Path.Value ?? "", request.QueryString.Value ?? "", request.Headers.Authorization.ToString()));
            var selector = request.Query["labelSelector"].ToString();
            var items = new JsonArray();
            foreach (var (name, pod) in api._pods.OrderBy(p => p.Key))
            {
                if (ns != Namespace || !Matches(pod.Labels, selector))
                {
                    continue;
                }
                var labels = new JsonObject();
                foreach (var (key, value) in pod.Labels)
                {
                    labels[key] = value;
                }
                items.Add(new JsonObject
                {
                    ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["labels"] = labels },
                    ["spec"] = new JsonObject
                    {
                        ["containers"] = new JsonArray(new JsonObject
                        {
                            ["name"] = "node",
                            ["ports"] = new JsonArray(
                                new JsonObject { ["name"] = "remoting", ["containerPort"] = 7090, ["protocol"] = "TCP" },
                                new JsonObject { ["name"] = "management", ["containerPort"] = pod.ManagementPort, ["protocol"] = "TCP" }),
                        }),
                    },
                    ["status"] = new JsonObject
                    {
                        ["phase"] = "Running",
                        ["podIP"] = pod.Ip,
                        ["containerStatuses"] = new JsonArray(new JsonObject
                        {
                            ["name"] = "node",
                            ["ready"] = true,
                            ["restartCount"] = 0,
                            ["image"] = "connect-node:test",
                            ["imageID"] = "",
                            ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = "2026-01-01T00:00:00Z" } },
                        }),
                    },
                });
            }
            var list = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "PodList", ["metadata"] = new JsonObject { ["resourceVersion"] = "1" }, ["items"] = items };
            return Results.Text(list.ToJsonString(), "application/json");
        });
        await app.StartAsync();
        api.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port;
        return api;
    }

    /// <summary>Adds (or replaces) a Running pod with these labels.</summary>
    public void SetPod(string name, string ip, int managementPort, Dictionary<string, string> labels) => _pods[name] = (ip, managementPort, labels);

    /// <summary>Equality-based selectors only (<c>a=b,c=d</c>), what pod discovery sends.</summary>
    private static bool Matches(Dictionary<string, string> labels, string selector) =>
        string.IsNullOrEmpty(selector) || selector.Split(',').All(term =>
        {
            var parts = term.Split('=', 2);
            return parts.Length == 2 && labels.TryGetValue(parts[0], out var value) && value == parts[1];
        });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
