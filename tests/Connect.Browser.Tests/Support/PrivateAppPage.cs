using Connect.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Connect.Browser.Tests.Support;

/// <summary>What a browser must see of <see cref="PrivateWebApp"/> when the tunnel works.</summary>
public static class PrivateAppPage
{
    /// <summary>Loads the page and checks everything the script reports, then submits the form and checks the result page.</summary>
    public static async Task WorksAsync(IPage page, string url, bool https, string note)
    {
        var response = await page.GotoAsync(url, new PageGotoOptions { Timeout = 20_000 });
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        var scheme = https ? "https" : "http";
        var expect = new LocatorAssertionsToHaveTextOptions { Timeout = 15_000 };
        await Expect(page.Locator("#script")).ToHaveTextAsync("ran", expect);
        await Expect(page.Locator("#origin")).ToHaveTextAsync(new Uri(url).GetLeftPart(UriPartial.Authority), expect);
        await Expect(page.Locator("#image")).ToHaveTextAsync("7x5", expect);
        await Expect(page.Locator("#fetch")).ToHaveTextAsync($"{PrivateWebApp.ApiMessage} over {scheme}", expect);
        await Expect(page.Locator("#ws")).ToHaveTextAsync("echoed", expect);

        await page.FillAsync("#note", note);
        await page.ClickAsync("#send");
        await Expect(page.Locator("#result")).ToHaveTextAsync($"received: {note} over {scheme}", expect);
        Assert.EndsWith("/app/form", page.Url, StringComparison.Ordinal);
    }
}
