using System.Net;
using Connect.Host.Tunnels;
using Connect.Proxy.Forwarding;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Connect.Host.Configuration;

/// <summary>The node's three listeners, each tagged so requests can tell where they arrived; ports are read back after binding (port 0 in tests).</summary>
public sealed class Listeners
{
    public const string Admin = "admin";

    public ListenOptions? Tunnel { get; private set; }

    public ListenOptions? Proxy { get; private set; }

    public ListenOptions? AdminListener { get; private set; }

    public int TunnelPort => Tunnel?.IPEndPoint?.Port ?? 0;

    public int ProxyPort => Proxy?.IPEndPoint?.Port ?? 0;

    public int AdminPort => AdminListener?.IPEndPoint?.Port ?? 0;

    public void Configure(KestrelServerOptions kestrel, ConnectSettings settings, IServiceProvider services)
    {
        // Public listeners (proxy, tunnel) on the public bind; the admin API on its own, loopback unless configured.
        var address = IPAddress.Parse(settings.PublicBindAddress);
        var adminAddress = IPAddress.Parse(settings.AdminBindAddress);
        // Absolute-form requests may carry a Host header that differs from the URL; the URL wins (RFC 9112 section 3.2.2).
        kestrel.AllowHostHeaderOverride = true;
        kestrel.Limits.MaxRequestLineSize = settings.Proxy.Options.MaxRequestLineBytes;
        kestrel.Limits.MaxRequestHeadersTotalSize = settings.Proxy.Options.MaxRequestHeadBytes;
        kestrel.Limits.RequestHeadersTimeout = settings.Proxy.Options.RequestHeadTimeout;
        kestrel.Limits.MaxRequestBodySize = null; // bodies stream through; nothing is buffered.
        // A client that trickles its body or does not read its response would hold a request (and a tunnel stream) for
        // ever. Kestrel counts only the time it waits on the client, not time the proxy spends waiting on the tunnel.
        var proxyOptions = settings.Proxy.Options;
        kestrel.Limits.MinRequestBodyDataRate = proxyOptions.MinClientDataRate > 0 ? new MinDataRate(proxyOptions.MinClientDataRate, proxyOptions.MinClientDataRateGrace) : null;
        kestrel.Limits.MinResponseDataRate = proxyOptions.MinClientDataRate > 0 ? new MinDataRate(proxyOptions.MinClientDataRate, proxyOptions.MinClientDataRateGrace) : null;

        // Certificates load here, before binding, so a bad path or password stops start-up with a message naming the setting.
        var tunnelCertificate = settings.Tunnel.Certificate.IsConfigured ? Certificates.Load(settings.Tunnel.Certificate, "Connect:Tunnel:Certificate") : null;
        var proxyCertificate = settings.Proxy.Certificate.IsConfigured ? Certificates.Load(settings.Proxy.Certificate, "Connect:Proxy:Certificate") : null;
        var tunnelChain = tunnelCertificate is null ? null : Certificates.LoadChain(settings.Tunnel.Certificate, "Connect:Tunnel:Certificate");
        var proxyChain = proxyCertificate is null ? null : Certificates.LoadChain(settings.Proxy.Certificate, "Connect:Proxy:Certificate");

        kestrel.Listen(address, settings.Tunnel.Port, listen =>
        {
            Tunnel = listen;
            listen.Protocols = HttpProtocols.Http1;
            if (tunnelCertificate is not null)
            {
                // The intermediates in the certificate file go out with it, so an agent that trusts only the root (--ca-file) builds the chain.
                listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = tunnelCertificate, ServerCertificateChain = tunnelChain });
            }
            listen.Use(next => connection =>
            {
                connection.Items[ListenerKeys.Listener] = TunnelEndpoint.ListenerName;
                return next(connection);
            });
        });
        kestrel.Listen(address, settings.Proxy.Port, listen =>
        {
            Proxy = listen;
            listen.Protocols = HttpProtocols.Http1;
            if (proxyCertificate is not null)
            {
                // Before the proxy middleware, so it sees the decrypted bytes (CONNECT inside TLS to the proxy).
                listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = proxyCertificate, ServerCertificateChain = proxyChain });
            }
            // Resolved per connection (a singleton): the proxy's dependencies need the actor system, which starts after Kestrel is configured.
            listen.Use(next => connection => services.GetRequiredService<ProxyConnectionMiddleware>().OnConnectionAsync(connection, next));
        });
        kestrel.Listen(adminAddress, settings.Admin.Port, listen =>
        {
            AdminListener = listen;
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(next => connection =>
            {
                connection.Items[ListenerKeys.Listener] = Admin;
                return next(connection);
            });
        });
    }
}
