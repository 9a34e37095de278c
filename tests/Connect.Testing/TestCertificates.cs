using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Connect.Testing;

/// <summary>
/// A test PKI made in memory: a root CA, an intermediate CA under it, and server certificates for 127.0.0.1 and
/// localhost issued by either, written as PEM files into a temporary folder (deleted on dispose).
/// </summary>
public sealed class TestCertificates : IDisposable
{
    /// <summary>id-kp-serverAuth.</summary>
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    /// <summary>id-kp-clientAuth.</summary>
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private readonly string _dir = Directory.CreateTempSubdirectory("connect-pki-").FullName;
    private readonly ECDsa _rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestCertificates()
    {
        Root = CaRequest("CN=Connect Test Root", _rootKey).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        using var intermediate = CaRequest("CN=Connect Test Intermediate", _intermediateKey).Create(Root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20), RandomNumberGenerator.GetBytes(8));
        Intermediate = intermediate.CopyWithPrivateKey(_intermediateKey);
        RootFile = Path.Combine(_dir, "root.pem");
        File.WriteAllText(RootFile, Root.ExportCertificatePem());
    }

    public X509Certificate2 Root { get; }

    public X509Certificate2 Intermediate { get; }

    /// <summary>The root CA as a PEM file, what an agent's --ca-file points at.</summary>
    public string RootFile { get; }

    /// <summary>A server certificate (with its key) for 127.0.0.1 and localhost, issued by the intermediate or the root, with the given extended key usages.</summary>
    public X509Certificate2 Server(bool byIntermediate, params string[] usages)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        var oids = new OidCollection();
        foreach (var usage in usages.Length == 0 ? [ServerAuth] : usages)
        {
            oids.Add(new Oid(usage));
        }
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var issued = request.Create(byIntermediate ? Intermediate : Root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7), RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(key);
        // Through PKCS#12, as the node loads its certificates: SslStream wants a key it can hand to the TLS library.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// Writes a server certificate as PEM files (certificate, key) for a node's settings; one issued by the intermediate
    /// is followed in its file by the intermediate, as a CA's "fullchain.pem" is.
    /// </summary>
    public (string Certificate, string Key) ServerPemFiles(bool byIntermediate = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuth)], false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var issued = request.Create(byIntermediate ? Intermediate : Root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7), RandomNumberGenerator.GetBytes(8));
        var name = Guid.NewGuid().ToString("N");
        var certificate = Path.Combine(_dir, $"{name}.pem");
        var keyFile = Path.Combine(_dir, $"{name}.key");
        File.WriteAllText(certificate, issued.ExportCertificatePem() + "\n" + (byIntermediate ? Intermediate.ExportCertificatePem() + "\n" : ""));
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certificate, keyFile);
    }

    private static CertificateRequest CaRequest(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request;
    }

    public void Dispose()
    {
        Root.Dispose();
        Intermediate.Dispose();
        _rootKey.Dispose();
        _intermediateKey.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
