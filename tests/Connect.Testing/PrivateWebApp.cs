using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Connect.Testing;

/// <summary>
/// A small web app as a customer's private app looks to a browser, served by <see cref="TestTargets"/> on its HTTP and
/// HTTPS (self-signed) listeners: <c>/app</c> is a page whose script (<c>/app/app.js</c>) writes into the DOM what
/// worked: the script itself, the image's natural size (<c>/app/pixel.png</c>), a fetch() of a JSON API
/// (<c>/app/api/info</c>), and a WebSocket echo (<c>/ws</c>, ws: or wss: like the page). Its form POSTs to
/// <c>/app/form</c>, which answers with a result page. Nothing is cached, so every reload goes through the proxy again.
/// </summary>
public static class PrivateWebApp
{
    /// <summary>A 7 x 5 red PNG; the page reports its naturalWidth x naturalHeight.</summary>
    public static readonly byte[] Pixel = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFCAIAAAAG+GGPAAAAEUlEQVR4nGM4ISeHiRhoJAoAuykjjT2f0dIAAAAASUVORK5CYII=");

    public const string ApiMessage = "hello from the private api";

    private const string Page = """
        <!doctype html>
        <html>
        <head><meta charset="utf-8"><title>Private app</title><script src="/app/app.js"></script></head>
        <body>
          <h1>Private app</h1>
          <img id="pixel" src="/app/pixel.png" alt="pixel">
          <dl>
            <dt>origin</dt><dd id="origin">?</dd>
            <dt>script</dt><dd id="script">did not run</dd>
            <dt>image</dt><dd id="image">pending</dd>
            <dt>fetch</dt><dd id="fetch">pending</dd>
            <dt>websocket</dt><dd id="ws">pending</dd>
          </dl>
          <form id="form" method="post" action="/app/form">
            <input id="note" name="note" value="">
            <button id="send" type="submit">Send</button>
          </form>
        </body>
        </html>
        """;

    private const string Script = """
        function show(id, text) { document.getElementById(id).textContent = text; }
        document.addEventListener('DOMContentLoaded', () => {
          show('script', 'ran');
          show('origin', location.origin);
          const img = document.getElementById('pixel');
          const sized = () => show('image', img.naturalWidth + 'x' + img.naturalHeight);
          if (img.complete && img.naturalWidth) { sized(); } else { img.addEventListener('load', sized); img.addEventListener('error', () => show('image', 'failed')); }
          fetch('/app/api/info', { headers: { 'Accept': 'application/json' } })
            .then(r => r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)))
            .then(j => show('fetch', j.message + ' over ' + j.scheme))
            .catch(e => show('fetch', 'failed: ' + e));
          const nonce = Math.random().toString(36).slice(2);
          const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
          ws.onopen = () => ws.send('echo ' + nonce);
          ws.onmessage = e => show('ws', e.data === 'echo ' + nonce ? 'echoed' : 'wrong echo: ' + e.data);
          ws.onerror = () => show('ws', 'failed');
          // For tests that hold the page open: one more round trip on the same WebSocket (the same tunnel stream).
          window.wsEcho = text => new Promise((resolve, reject) => {
            ws.addEventListener('message', e => resolve(e.data), { once: true });
            ws.addEventListener('close', () => reject(new Error('websocket closed')), { once: true });
            ws.send(text);
          });
        });
        """;

    public static void MapPrivateWebApp(this WebApplication web)
    {
        web.MapGet("/app", (HttpResponse response) => NoStore(response, Results.Content(Page, "text/html; charset=utf-8")));
        web.MapGet("/app/app.js", (HttpResponse response) => NoStore(response, Results.Content(Script, "text/javascript; charset=utf-8")));
        web.MapGet("/app/pixel.png", (HttpResponse response) => NoStore(response, Results.Bytes(Pixel, "image/png")));
        web.MapGet("/app/api/info", (HttpRequest request, HttpResponse response) => NoStore(response, Results.Json(new { message = ApiMessage, scheme = request.Scheme })));
        web.MapPost("/app/form", async (HttpRequest request, HttpResponse response) =>
        {
            var form = await request.ReadFormAsync();
            var note = WebUtility.HtmlEncode(form["note"].ToString());
            return NoStore(response, Results.Content(
                $"<!doctype html><html><head><meta charset=\"utf-8\"><title>Received</title></head><body><h1 id=\"result\">received: {note} over {request.Scheme}</h1></body></html>",
                "text/html; charset=utf-8"));
        });
    }

    private static IResult NoStore(HttpResponse response, IResult result)
    {
        response.Headers.CacheControl = "no-store";
        return result;
    }
}
