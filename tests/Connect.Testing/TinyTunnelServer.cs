using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Multiplexing;
using Connect.Tunnel.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Connect.Testing;

/// <summary>
/// A minimal connect.v1 endpoint over real Kestrel TLS that sends its certificate chain (leaf and intermediates), which
/// the node's listener cannot be told to do: for testing how the agent validates a chain. It accepts the upgrade and
/// keeps the link open with a real multiplexer; it serves no session.
/// </summary>
public sealed class TinyTunnelServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _links;

    private TinyTunnelServer(WebApplication app) => _app = app;

    public Uri Uri { get; private set; } = null!;

    /// <summary>Upgrades accepted (the agent got past TLS and the handshake).</summary>
    public int Links => Volatile.Read(ref _links);

    public static async Task<TinyTunnelServer> StartAsync(X509Certificate2 certificate, X509Certificate2Collection chain)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // The TLS options by callback: Kestrel's certificate options refuse a certificate without server-auth usage,
        // and such a certificate is exactly what one of the tests must present.
        var context = SslStreamCertificateContext.Create(certificate, chain, offline: true);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(
            (_, _, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificateContext = context }), state: context)));
        var app = builder.Build();
        var server = new TinyTunnelServer(app);
        app.UseWebSockets();
        app.Map("/v1/tunnel", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }
            var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = ProtocolLimits.SubProtocol });
            Interlocked.Increment(ref server._links);
            await using var mux = new TunnelMux(new WebSocketFrameTransport(socket, "agent"), new MuxOptions { IsDialer = false });
            await mux.RunAsync(cancellationToken: context.RequestAborted);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server.Uri = new Uri($"wss://127.0.0.1:{new Uri(address).Port}/v1/tunnel");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
    }
}
