using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Connect.Routing.Security;

/// <summary>
/// The cluster certificate (<c>Connect:Cluster:Certificate</c>), shared by every node: Akka.Remote and the node data
/// channel run over TLS with it, and both ends of every connection present it (mutual authentication). A peer is
/// trusted when it presents this very certificate (pinned by its bytes), so a process without the certificate and its
/// key can neither join the cluster nor open a data channel. Null certificate: cluster TLS is off.
/// </summary>
public sealed class ClusterTls(X509Certificate2? certificate)
{
    public X509Certificate2? Certificate { get; } = certificate;

    public bool IsEnabled => Certificate is not null;

    /// <summary>True when <paramref name="peer"/> is the cluster certificate itself.</summary>
    public bool Accepts(X509Certificate? peer) =>
        Certificate is not null && peer is not null && peer.GetRawCertData().AsSpan().SequenceEqual(Certificate.RawData);

    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificate = Certificate,
        ClientCertificateRequired = true,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        // Pinning, not the system's trust store: only the cluster's own certificate is a node.
        RemoteCertificateValidationCallback = (_, peer, _, _) => Accepts(peer),
    };

    public SslClientAuthenticationOptions ClientOptions(string targetHost) => new()
    {
        TargetHost = targetHost,
        ClientCertificates = [Certificate!],
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate!,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, peer, _, _) => Accepts(peer),
    };
}
