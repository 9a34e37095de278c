using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Connect.Testing;

namespace Connect.EndToEnd.Tests;

/// <summary>
/// TLS on both listeners with a certificate made in the test: a test CA signs a server certificate for 127.0.0.1 and
/// localhost, written to temporary PEM files the node loads. The agent trusts it only through --ca-file.
/// </summary>
public sealed class TlsTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("connect-tls-").FullName;
    private X509Certificate2 _ca = null!;
    private TestTargets _targets = null!;
    private TestNode _node = null!;

    private string CaFile => Path.Combine(_dir, "ca.pem");

    private Uri WssUri => new($"wss://127.0.0.1:{_node.TunnelPort}/v1/tunnel");

    public async Task InitializeAsync()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Connect Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var server = serverRequest.Create(_ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7), RandomNumberGenerator.GetBytes(8));

        await File.WriteAllTextAsync(CaFile, _ca.ExportCertificatePem());
        await File.WriteAllTextAsync(Path.Combine(_dir, "server.pem"), server.ExportCertificatePem());
        await File.WriteAllTextAsync(Path.Combine(_dir, "server.key"), serverKey.ExportPkcs8PrivateKeyPem());

        _targets = await TestTargets.StartAsync();
        _node = await TestNode.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Connect:Tunnel:Certificate:Path"] = Path.Combine(_dir, "server.pem"),
            ["Connect:Tunnel:Certificate:KeyPath"] = Path.Combine(_dir, "server.key"),
            ["Connect:Proxy:Certificate:Path"] = Path.Combine(_dir, "server.pem"),
            ["Connect:Proxy:Certificate:KeyPath"] = Path.Combine(_dir, "server.key"),
        });
    }

    [Fact]
    public async Task An_agent_with_the_CA_file_connects_over_wss_and_serves_proxy_requests_over_an_https_proxy()
    {
        Assert.StartsWith("wss://", _node.Identity.TunnelUrl);
        Assert.StartsWith("https://", _node.Identity.ProxyUrl);
        await using var agent = await TestAgent.StartAsync("tls-1", [WssUri], configure: o => o with { CaFile = CaFile });

        // The proxy itself over TLS: the client validates the proxy's certificate against the test CA, then CONNECTs inside.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, _node.ProxyPort, timeout.Token);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => ChainsToTestCa(certificate, errors),
        }, timeout.Token);
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{_targets.EchoPort} HTTP/1.1\r\nProxy-Authorization: {ProxyClient.Basic("tls-1")}\r\n\r\n"), timeout.Token);
        var (status, _, _) = await ProxyClient.ReadResponseHeadAsync(tls, timeout.Token);
        Assert.Equal(200, status);
        var payload = RandomNumberGenerator.GetBytes(100_000);
        await tls.WriteAsync(payload, timeout.Token);
        var echoed = new byte[payload.Length];
        await tls.ReadExactlyAsync(echoed, timeout.Token);
        Assert.Equal(payload, echoed);
    }

    [Fact]
    public async Task An_agent_without_the_CA_refuses_the_server_says_why_and_keeps_retrying()
    {
        await using var agent = await TestAgent.StartAsync("tls-2", [WssUri], waitConnected: false);
        // Two refusals in a row: it reports each attempt and backs off rather than stopping.
        await Eventually.UntilAsync(() => agent.Log.Count(l => l.Contains("TLS certificate is not trusted")) >= 2, "two refusals of the untrusted certificate", TimeSpan.FromSeconds(15));
        Assert.Contains(agent.Log, l => l.Contains("pass --ca-file"));
        Assert.Empty(agent.Agent.Links);
        Assert.False(agent.Run.IsCompleted);
        Assert.Equal(0, _node.Links.Count);
    }

    [Fact]
    public async Task An_insecure_agent_connects_and_says_loudly_that_it_does_not_verify()
    {
        await using var agent = await TestAgent.StartAsync("tls-3", [WssUri], configure: o => o with { InsecureSkipVerify = true });
        Assert.Contains(agent.Log, l => l.Contains("WARNING: --insecure"));
        Assert.Single(agent.Agent.Links);
    }

    private bool ChainsToTestCa(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(new X509Certificate2(certificate));
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        await _targets.DisposeAsync();
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
