using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Connect.Tunnel.Frames;

namespace Connect.Client;

/// <summary>
/// Opens the WebSocket of one tunnel link: the connect.v1 subprotocol, the token, the session, and TLS checked
/// against the system roots, the CA in <c>--ca-file</c>, or nothing (<c>--insecure</c>).
/// </summary>
internal sealed class LinkConnector
{
    // id-kp-serverAuth (RFC 5280 4.2.1.12): a certificate made for something else must not pass as a server's.
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    private readonly AgentOptions _options;
    private readonly X509Certificate2Collection? _trustedCa;

    public LinkConnector(AgentOptions options)
    {
        _options = options;
        if (options.CaFile is not null)
        {
            _trustedCa = [];
            _trustedCa.ImportFromPemFile(options.CaFile);
        }
    }

    /// <summary>The server answered the upgrade with 400/401/403: retrying the same server soon will not help.</summary>
    public sealed class RefusedException(string message) : Exception(message);

    /// <summary>Connects and returns the socket and the node's name (its <c>Connect-Node</c> header, else the URL's authority).</summary>
    /// <exception cref="RefusedException">The server refused the token, the session or the request.</exception>
    public async Task<(ClientWebSocket Socket, string Node)> ConnectAsync(Uri server, CancellationToken stop)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolLimits.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _options.Token);
        socket.Options.KeepAliveInterval = TimeSpan.Zero; // connect.v1 PING frames do keep-alive, both ways.
        socket.Options.CollectHttpResponseDetails = true;
        if (_options.InsecureSkipVerify)
        {
            socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (_trustedCa is not null)
        {
            socket.Options.RemoteCertificateValidationCallback = ValidateWithCa;
        }

        var uri = new UriBuilder(server) { Query = "session=" + Uri.EscapeDataString(_options.Session) }.Uri;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.BadRequest)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            throw new RefusedException($"{server} rejected the agent with {(int)status} {status}: " +
                (status == HttpStatusCode.Forbidden ? $"the token may not serve session '{_options.Session}'" : status == HttpStatusCode.Unauthorized ? "the token is not valid" : "bad request (session name?)"));
        }
        catch (Exception) when (!stop.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            socket.Dispose();
            throw new TimeoutException($"no WebSocket handshake within {_options.ConnectTimeout.TotalSeconds:0} s");
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var node = socket.HttpResponseHeaders?.TryGetValue("Connect-Node", out var values) == true ? string.Join(",", values) : server.Authority;
        socket.HttpResponseHeaders = null;
        return (socket, node);
    }

    private bool ValidateWithCa(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false; // Name mismatch or no certificate: the CA does not change that.
        }
        using var leaf = new X509Certificate2(certificate);
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_trustedCa!);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(ServerAuthentication);
        if (chain is not null)
        {
            // The intermediates the server sent: the platform's chain holds them in its extra store (and in its
            // elements when it got that far). Only a root from --ca-file anchors the chain; these only link it.
            custom.ChainPolicy.ExtraStore.AddRange(chain.ChainPolicy.ExtraStore);
            foreach (var element in chain.ChainElements.Skip(1))
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        return custom.Build(leaf);
    }

    /// <summary>Says why a connect failed; for TLS, what to do about it.</summary>
    public string Describe(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                // Refuse, say why and how to fix it, and keep retrying: the server's certificate may be fixed or rotated
                // without restarting every agent, and one misconfigured node behind a load balancer must not stop the agent.
                return $"the server's TLS certificate is not trusted ({inner.Message}); " +
                    (_trustedCa is null
                        ? "pass --ca-file with the CA that signed it (or --insecure, for development only)"
                        : $"it does not chain to the CA in --ca-file {_options.CaFile}, is not made for server authentication, or its name does not match the URL");
            }
        }
        return e switch
        {
            WebSocketException { InnerException: { } inner } w => $"{w.Message} ({inner.Message})",
            _ => e.Message,
        };
    }
}
