using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Connect.Ctl;

/// <summary>A failure that ends the command with <see cref="ExitCode"/> and a one-line message.</summary>
public sealed class CtlException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Calls one node's admin API (<c>http://host:port/v1/...</c>) with the bearer token; maps every failure to an exit code.</summary>
public sealed class AdminClient(HttpClient http, string server, string? token)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Server { get; } = server;

    public Task<(T Value, string Raw)> GetAsync<T>(string path, CancellationToken cancellationToken) => SendAsync<T>(HttpMethod.Get, path, cancellationToken);

    public Task<(T Value, string Raw)> PostAsync<T>(string path, CancellationToken cancellationToken) => SendAsync<T>(HttpMethod.Post, path, cancellationToken);

    private async Task<(T Value, string Raw)> SendAsync<T>(HttpMethod method, string path, CancellationToken cancellationToken)
    {
        using var request = Request(method, path);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        var body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);
        ThrowUnlessSuccess(response, body, path);
        try
        {
            return (JsonSerializer.Deserialize<T>(body, Json) ?? throw new JsonException("empty body"), body);
        }
        catch (JsonException e)
        {
            throw new CtlException(ExitCodes.Unreachable, $"{Server} did not answer like a Connect admin API ({e.Message})");
        }
    }

    /// <summary>
    /// Reads a Server-Sent Events stream (<c>GET /v1/events</c>) event by event until the node ends it or the token
    /// is cancelled. Each item is the event's name and its data (one line of JSON).
    /// </summary>
    public async IAsyncEnumerable<(string Type, string Data)> EventsAsync(string path, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            ThrowUnlessSuccess(response, await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false), path);
        }
        if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
        {
            throw new CtlException(ExitCodes.Unreachable, $"{Server} did not answer {path} with an event stream: is this a Connect node of this release?");
        }
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        var type = "message";
        var data = new System.Text.StringBuilder();
        while (true)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new CtlException(ExitCodes.Unreachable, $"the event stream from {Server} broke: {e.Message}");
            }
            if (line is null)
            {
                throw new CtlException(ExitCodes.Unreachable, $"{Server} ended the event stream (the node is stopping?)");
            }
            if (line.Length == 0)
            {
                // A blank line ends an event (https://html.spec.whatwg.org/multipage/server-sent-events.html).
                if (data.Length > 0)
                {
                    yield return (type, data.ToString());
                }
                type = "message";
                data.Clear();
            }
            else if (line.StartsWith("event:", StringComparison.Ordinal))
            {
                type = line["event:".Length..].Trim();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                data.Append(data.Length > 0 ? "\n" : "").Append(line["data:".Length..].TrimStart());
            }
            // Comments (": keep-alive"), retry: and id: lines need nothing here.
        }
    }

    private HttpRequestMessage Request(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, $"http://{Server}{path}");
        if (!string.IsNullOrEmpty(token))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        try
        {
            return await http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CtlException(ExitCodes.Unreachable, $"cannot reach the admin API at {Server}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CtlException(ExitCodes.Unreachable, $"the admin API at {Server} did not answer within {http.Timeout.TotalSeconds:0} s");
        }
    }

    private async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CtlException(ExitCodes.Unreachable, $"cannot reach the admin API at {Server}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CtlException(ExitCodes.Unreachable, $"the admin API at {Server} did not answer within {http.Timeout.TotalSeconds:0} s");
        }
    }

    private void ThrowUnlessSuccess(HttpResponseMessage response, string body, string path)
    {
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            throw new CtlException(ExitCodes.Unauthorized, $"unauthorized: {ErrorText(body)} (pass --token or set CONNECT_ADMIN_TOKEN)");
        }
        if (!response.IsSuccessStatusCode)
        {
            if (response.StatusCode == HttpStatusCode.NotFound && !body.TrimStart().StartsWith('{'))
            {
                throw new CtlException(ExitCodes.Unreachable, $"{Server} answered 404 for {path}: is this a Connect node's admin port?");
            }
            throw new CtlException(ExitCodes.Failed, $"{(int)response.StatusCode} {response.ReasonPhrase}: {ErrorText(body)}");
        }
    }

    private static string ErrorText(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.TryGetProperty("error", out var error))
            {
                return error.GetString() ?? body;
            }
        }
        catch (JsonException)
        {
        }
        return body.Trim();
    }
}
