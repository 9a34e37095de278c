using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace Connect.Proxy.Forwarding;

/// <summary>
/// The proxy's own answers, in one shape wherever they are written: straight onto a connection's pipe where Kestrel's
/// HTTP stack is not in the path (CONNECT), or through Kestrel's response (absolute-form). Either way the client gets
/// the status, a <c>Connect-Error</c> header naming the <see cref="ProxyError"/>, a Content-Length body that says why,
/// and on 407 the <c>Proxy-Authenticate</c> challenge (RFC 9110 section 11.7.1).
/// </summary>
public static class RawResponses
{
    public static readonly byte[] ConnectionEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n"u8.ToArray();

    public const string ErrorHeader = "Connect-Error";

    public const string ContentType = "text/plain; charset=utf-8";

    public static async ValueTask WriteErrorAsync(PipeWriter output, HttpStatusCode status, ProxyError error, string reason, string realm, bool close)
    {
        var body = ErrorBody(status, reason);
        var head = new StringBuilder()
            .Append("HTTP/1.1 ").Append((int)status).Append(' ').Append(ReasonPhrases.GetReasonPhrase((int)status)).Append("\r\n")
            .Append("Content-Type: ").Append(ContentType).Append("\r\n")
            .Append("Content-Length: ").Append(body.Length).Append("\r\n")
            .Append(ErrorHeader).Append(": ").Append(error).Append("\r\n");
        if (status == HttpStatusCode.ProxyAuthenticationRequired)
        {
            head.Append("Proxy-Authenticate: ").Append(Challenge(realm)).Append("\r\n");
        }
        if (close)
        {
            head.Append("Connection: close\r\n");
        }
        head.Append("\r\n");
        await output.WriteAsync(Encoding.ASCII.GetBytes(head.ToString())).ConfigureAwait(false);
        await output.WriteAsync(body).ConfigureAwait(false);
    }

    /// <summary>The same answer through Kestrel's response (which writes the status line and framing); the response must not have started.</summary>
    public static async Task WriteErrorAsync(HttpResponse response, HttpStatusCode status, ProxyError error, string reason, string realm, CancellationToken cancellationToken)
    {
        response.Clear();
        response.StatusCode = (int)status;
        response.ContentType = ContentType;
        response.Headers[ErrorHeader] = error.ToString();
        if (status == HttpStatusCode.ProxyAuthenticationRequired)
        {
            response.Headers.ProxyAuthenticate = Challenge(realm);
        }
        // A Content-Length (not chunked) so every client, down to a raw socket, reads the whole reason.
        var body = ErrorBody(status, reason);
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, cancellationToken).ConfigureAwait(false);
    }

    private static byte[] ErrorBody(HttpStatusCode status, string reason) =>
        Encoding.UTF8.GetBytes($"connect: {(int)status} {ReasonPhrases.GetReasonPhrase((int)status)}: {reason}\n");

    private static string Challenge(string realm) => $"Basic realm=\"{realm}\", charset=\"UTF-8\"";
}
