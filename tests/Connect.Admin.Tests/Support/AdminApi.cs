using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Connect.Ctl;
using Connect.Testing;

namespace Connect.Admin.Tests.Support;

/// <summary>Calls a test node's admin API over real HTTP, and runs connectctl against it.</summary>
public static class AdminApi
{
    public const string Token = "admin-token-for-tests-0123";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static Dictionary<string, string?> Settings => new() { ["Connect:Admin:Token"] = Token };

    public static HttpClient Client(TestNode node, string? token = Token)
    {
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node.AdminPort}"), Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    public static async Task<T> GetAsync<T>(TestNode node, string path)
    {
        using var client = Client(node);
        using var response = await client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonSerializer.Deserialize<T>(body, Json)!;
    }

    public sealed record CtlResult(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
    }

    /// <summary>Runs <c>connectctl 127.0.0.1:ADMINPORT --token T ARGS</c> in process.</summary>
    public static Task<CtlResult> CtlAsync(TestNode node, params string[] args) => CtlAsync($"127.0.0.1:{node.AdminPort}", Token, null, args);

    public static async Task<CtlResult> CtlAsync(string server, string? token, TextReader? input, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var all = new List<string> { server };
        if (token is not null)
        {
            all.AddRange(["--token", token]);
        }
        all.AddRange(args);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var code = await new ConnectCtl(environment: _ => null)
            .RunAsync(all.ToArray(), output, error, input, timeout.Token);
        return new CtlResult(code, output.ToString(), error.ToString());
    }
}
