using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Connect.Testing;

/// <summary>Certificates made in the test and written to a temporary folder as PEM files, the way an operator's openssl output looks.</summary>
public sealed class SelfSignedCertificates : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("connect-certs-").FullName;

    /// <summary>A self-signed certificate for 127.0.0.1/localhost with both server and client usage: a tunnel or cluster certificate.</summary>
    public (string CertPath, string KeyPath, X509Certificate2 Certificate) SelfSigned(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        var certPath = Path.Combine(_dir, name + ".pem");
        var keyPath = Path.Combine(_dir, name + ".key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath, certificate);
    }

    /// <summary>The same certificate as a password-protected PKCS#12 file (what Akka.Remote's DotNetty transport loads).</summary>
    public string Pfx(X509Certificate2 certificate, string name, string password)
    {
        var path = Path.Combine(_dir, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a stopping node: the temp folder is cleaned by the OS later.
        }
    }
}
