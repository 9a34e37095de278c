using Microsoft.Playwright;

namespace Connect.Browser.Tests.Support;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by .ci/run) driven by Playwright's driver, which ships inside
/// the Microsoft.Playwright package (.playwright/node): nothing is downloaded, <c>playwright install</c> is never run.
/// </summary>
public sealed class Chromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private Chromium(IPlaywright playwright, IBrowser browser)
    {
        Playwright = playwright;
        Browser = browser;
    }

    public IPlaywright Playwright { get; }

    public IBrowser Browser { get; }

    public static async Task<Chromium> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"{ExecutablePath} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)");
        }
        // The driver must never fetch browsers; the executable below is the only one used.
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Timeout = 30_000,
            Args =
            [
                "--no-sandbox", // the tests run as root
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Chromium sends loopback requests around the proxy unless told otherwise; the private app is on loopback.
                "--proxy-bypass-list=<-loopback>",
            ],
        });
        return new Chromium(playwright, browser);
    }

    /// <summary>A fresh browser context that uses a Connect node's proxy port with the session's credentials (answered after the 407 challenge).</summary>
    public Task<IBrowserContext> ThroughProxyAsync(int proxyPort, string session, string token) =>
        Browser.NewContextAsync(new BrowserNewContextOptions
        {
            Proxy = new Microsoft.Playwright.Proxy { Server = $"http://127.0.0.1:{proxyPort}", Username = session, Password = token, Bypass = "<-loopback>" },
            IgnoreHTTPSErrors = true, // the private app's HTTPS origin has a self-signed certificate
        });

    /// <summary>A context with no proxy, for pages served by the nodes themselves (the admin port).</summary>
    public Task<IBrowserContext> DirectAsync() =>
        Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });

    public async ValueTask DisposeAsync()
    {
        await Browser.CloseAsync();
        Playwright.Dispose();
    }
}
