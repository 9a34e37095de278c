using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace Connect.Proxy.Forwarding;

/// <summary>Writes complete HTTP/1.1 responses straight onto a connection's pipe (used where Kestrel's HTTP stack is not in the path).</summary>
public static class RawResponses
{
    public static readonly byte[] ConnectionEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n"u8.ToArray();

    public static async ValueTask WriteErrorAsync(PipeWriter output, HttpStatusCode status, ProxyError error, string reason, string realm, bool close)
    {
        var body = Encoding.UTF8.GetBytes($"connect: {(int)status} {ReasonPhrases.GetReasonPhrase((int)status)}: {reason}\n");
        var head = new StringBuilder()
            .Append("HTTP/1.1 ").Append((int)status).Append(' ').Append(ReasonPhrases.GetReasonPhrase((int)status)).Append("\r\n")
            .Append("Content-Type: text/plain; charset=utf-8\r\n")
            .Append("Content-Length: ").Append(body.Length).Append("\r\n")
            .Append("Connect-Error: ").Append(error).Append("\r\n");
        if (status == HttpStatusCode.ProxyAuthenticationRequired)
        {
            head.Append("Proxy-Authenticate: Basic realm=\"").Append(realm).Append("\", charset=\"UTF-8\"\r\n");
        }
        if (close)
        {
            head.Append("Connection: close\r\n");
        }
        head.Append("\r\n");
        await output.WriteAsync(Encoding.ASCII.GetBytes(head.ToString())).ConfigureAwait(false);
        await output.WriteAsync(body).ConfigureAwait(false);
    }
}
