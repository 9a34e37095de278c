namespace Connect.Admin.Tests.Support;

/// <summary>Awaits a condition with a bound: retries the assertion until it passes or the time is up, then rethrows its last failure.</summary>
public static class Eventually
{
    public static async Task<T> AssertAsync<T>(Func<Task<T>> attempt, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            try
            {
                return await attempt();
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    public static Task AssertAsync(Func<Task> attempt, TimeSpan? timeout = null) =>
        AssertAsync(async () =>
        {
            await attempt();
            return true;
        }, timeout);
}
