using System.Security.Cryptography.X509Certificates;

namespace Connect.Host.Configuration;

/// <summary>Loads a listener certificate from <see cref="CertificateSettings"/>; every failure names the setting and the file.</summary>
public static class Certificates
{
    /// <summary>
    /// The certificates that follow the first one in a PEM file (or the other certificates of a PKCS#12 file): the
    /// intermediates a server must send so that clients trusting only the root can build its chain (RFC 8446 section
    /// 4.4.2). Empty when the file holds just the server's certificate.
    /// </summary>
    public static X509Certificate2Collection LoadChain(CertificateSettings settings, string setting)
    {
        var path = settings.Path!;
        try
        {
            var all = path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
                ? X509CertificateLoader.LoadPkcs12CollectionFromFile(path, settings.Password)
                : PemCollection(path);
            var chain = new X509Certificate2Collection();
            foreach (var certificate in all)
            {
                if (certificate.HasPrivateKey)
                {
                    continue; // the server's own certificate (PKCS#12)
                }
                chain.Add(certificate);
            }
            if (!path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase) && chain.Count > 0)
            {
                chain.RemoveAt(0); // a PEM file starts with the server's own certificate
            }
            return chain;
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
        {
            throw new InvalidOperationException($"{setting}: cannot read the certificate chain in '{path}': {e.Message}");
        }
    }

    private static X509Certificate2Collection PemCollection(string path)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPemFile(path);
        return collection;
    }

    public static X509Certificate2 Load(CertificateSettings settings, string setting)
    {
        var path = settings.Path!;
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{setting}:Path '{path}' does not exist");
        }
        try
        {
            if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
            {
                return X509CertificateLoader.LoadPkcs12FromFile(path, settings.Password);
            }
            if (string.IsNullOrWhiteSpace(settings.KeyPath) || !File.Exists(settings.KeyPath))
            {
                throw new InvalidOperationException($"{setting}:KeyPath must name the PEM private key of '{path}' (got '{settings.KeyPath}')");
            }
            using var pem = string.IsNullOrEmpty(settings.Password)
                ? X509Certificate2.CreateFromPemFile(path, settings.KeyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(path, settings.Password, settings.KeyPath);
            // A PEM key is ephemeral; a PKCS#12 round trip gives SslStream a key it can use on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
        {
            throw new InvalidOperationException($"{setting}: cannot load '{path}': {e.Message}");
        }
    }
}
