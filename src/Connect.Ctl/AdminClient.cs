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
        using var request = new HttpRequestMessage(method, $"http://{Server}{path}");
        if (!string.IsNullOrEmpty(token))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        HttpResponseMessage response;
        string body;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CtlException(ExitCodes.Unreachable, $"cannot reach the admin API at {Server}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CtlException(ExitCodes.Unreachable, $"the admin API at {Server} did not answer within {http.Timeout.TotalSeconds:0} s");
        }
        using (response)
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
            try
            {
                return (JsonSerializer.Deserialize<T>(body, Json) ?? throw new JsonException("empty body"), body);
            }
            catch (JsonException e)
            {
                throw new CtlException(ExitCodes.Unreachable, $"{Server} did not answer like a Connect admin API ({e.Message})");
            }
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
