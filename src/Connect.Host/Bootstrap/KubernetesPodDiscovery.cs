using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Akka.Discovery;
using Akka.Event;

namespace Connect.Host.Bootstrap;

/// <summary>
/// Akka.Discovery through the Kubernetes API: lists the pods of a namespace that match a label selector (GET
/// <c>/api/v1/namespaces/{namespace}/pods?labelSelector=...</c>, with the pod's service account token, trusting the
/// service account's CA) and returns each Running pod's IP with its container port named like the lookup's port name.
/// It reads the settings of Akka's own plugin (<c>akka.discovery.kubernetes-api</c>), so it is a drop-in for it.
/// <para>
/// Why not Akka.Discovery.KubernetesApi 1.5.73: it was built against KubernetesClient 17.0.14, which the registry
/// here does not serve; with 19.0.2 or 21.0.8 (the ones served) every lookup fails with a MissingMethodException
/// (the <c>V1PodList</c> constructor it calls no longer exists). One GET and a JSON walk need no client library.
/// </para>
/// </summary>
public sealed class KubernetesPodDiscovery : ServiceDiscovery, IDisposable
{
    /// <summary>Where this plugin's settings live: Akka's own path for Kubernetes API discovery.</summary>
    public const string ConfigPath = "akka.discovery.kubernetes-api";

    /// <summary>The defaults, those of Akka's plugin: the files and variables Kubernetes gives every pod.</summary>
    public static readonly string DefaultConfig = $$"""
        {{ConfigPath}} {
          class = "{{typeof(KubernetesPodDiscovery).AssemblyQualifiedName}}"
          api-ca-path = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
          api-token-path = "/var/run/secrets/kubernetes.io/serviceaccount/token"
          api-service-host-env-name = "KUBERNETES_SERVICE_HOST"
          api-service-port-env-name = "KUBERNETES_SERVICE_PORT"
          pod-namespace-path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
          pod-namespace = ""
          pod-label-selector = "app={0}"
        }
        """;

    private readonly Config _config;
    private readonly ILoggingAdapter _log;
    private readonly HttpClient _http;

    public KubernetesPodDiscovery(ExtendedActorSystem system)
    {
        _config = system.Settings.Config.GetConfig(ConfigPath);
        _log = Logging.GetLogger(system, this);
        var caPath = _config.GetString("api-ca-path");
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (File.Exists(caPath))
        {
            // Trust the cluster's CA for the API server, and nothing else (not the system store).
            var ca = X509CertificateLoader.LoadCertificateFromFile(caPath);
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                    {
                        return false;
                    }
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                },
            };
        }
        _http = new HttpClient(handler);
    }

    /// <summary>The API server's base URL from the two environment variables Kubernetes sets (a host given with a scheme, e.g. a test's http://, is kept).</summary>
    private string ApiBase()
    {
        var host = Environment.GetEnvironmentVariable(_config.GetString("api-service-host-env-name"));
        var port = Environment.GetEnvironmentVariable(_config.GetString("api-service-port-env-name"));
        if (string.IsNullOrWhiteSpace(host) || string.IsNullOrWhiteSpace(port))
        {
            throw new InvalidOperationException($"the Kubernetes API address is not set: environment variables {_config.GetString("api-service-host-env-name")} and {_config.GetString("api-service-port-env-name")} (Kubernetes sets them in every pod)");
        }
        var withScheme = host.Contains("://", StringComparison.Ordinal) ? host : "https://" + (host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host);
        return $"{withScheme}:{port}";
    }

    private string Namespace()
    {
        var configured = _config.GetString("pod-namespace");
        if (!string.IsNullOrWhiteSpace(configured) && configured != "<pod-namespace>")
        {
            return configured;
        }
        var path = _config.GetString("pod-namespace-path");
        return File.Exists(path) ? File.ReadAllText(path).Trim() : "default";
    }

    public override async Task<Resolved> Lookup(Lookup lookup, TimeSpan resolveTimeout)
    {
        var selector = string.Format(System.Globalization.CultureInfo.InvariantCulture, _config.GetString("pod-label-selector"), lookup.ServiceName);
        var ns = Namespace();
        var url = $"{ApiBase()}/api/v1/namespaces/{Uri.EscapeDataString(ns)}/pods?labelSelector={Uri.EscapeDataString(selector)}";
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        // The token is read per lookup: Kubernetes rotates projected service account tokens.
        var tokenPath = _config.GetString("api-token-path");
        if (File.Exists(tokenPath))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(tokenPath).ConfigureAwait(false)).Trim());
        }
        using var timeout = new CancellationTokenSource(resolveTimeout);
        using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            // 403 is the usual one: the pod's service account may not list pods (the Role and RoleBinding are missing).
            throw new InvalidOperationException($"listing pods in namespace '{ns}' with selector '{selector}' failed: {(int)response.StatusCode} {response.ReasonPhrase} from {url}");
        }
        using var json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false), cancellationToken: timeout.Token).ConfigureAwait(false);
        var targets = Targets(json.RootElement, lookup.PortName).ToList();
        _log.Debug("Kubernetes API discovery: {0} pods with {1} in {2}: {3}", targets.Count, selector, ns, string.Join(", ", targets.Select(t => $"{t.Host}:{t.Port}")));
        return new Resolved(lookup.ServiceName, targets);
    }

    /// <summary>Running, not being deleted, with an IP; the port is the container port named <paramref name="portName"/> (none asked: no port).</summary>
    public static IEnumerable<ResolvedTarget> Targets(JsonElement podList, string? portName)
    {
        if (!podList.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }
        foreach (var pod in items.EnumerateArray())
        {
            if (pod.TryGetProperty("metadata", out var metadata) && metadata.TryGetProperty("deletionTimestamp", out var deleting) && deleting.ValueKind != JsonValueKind.Null)
            {
                continue;
            }
            if (!pod.TryGetProperty("status", out var status)
                || !status.TryGetProperty("phase", out var phase) || phase.GetString() != "Running"
                || !status.TryGetProperty("podIP", out var ipText) || !IPAddress.TryParse(ipText.GetString(), out var ip))
            {
                continue;
            }
            int? port = null;
            if (portName is not null)
            {
                port = Ports(pod).Where(p => p.Name == portName).Select(p => (int?)p.Port).FirstOrDefault();
                if (port is null)
                {
                    continue; // a pod without the management port cannot be probed
                }
            }
            yield return new ResolvedTarget(ip.ToString(), port, ip);
        }
    }

    private static IEnumerable<(string? Name, int Port)> Ports(JsonElement pod)
    {
        if (!pod.TryGetProperty("spec", out var spec) || !spec.TryGetProperty("containers", out var containers) || containers.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }
        foreach (var container in containers.EnumerateArray())
        {
            if (!container.TryGetProperty("ports", out var ports) || ports.ValueKind != JsonValueKind.Array)
            {
                continue;
            }
            foreach (var port in ports.EnumerateArray())
            {
                if (port.TryGetProperty("containerPort", out var number) && number.TryGetInt32(out var value))
                {
                    yield return (port.TryGetProperty("name", out var name) ? name.GetString() : null, value);
                }
            }
        }
    }

    public void Dispose() => _http.Dispose();
}
