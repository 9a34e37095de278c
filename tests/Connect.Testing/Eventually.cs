namespace Connect.Testing;

/// <summary>
/// The one way tests wait: re-check a condition (or an assertion) until it holds or a bound passes, then fail
/// saying what did not happen. No test sleeps and hopes.
/// </summary>
public static class Eventually
{
    private static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    /// <summary>Waits until <paramref name="condition"/> is true; throws <see cref="TimeoutException"/> naming <paramref name="what"/> after the bound.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? bound = null)
    {
        var limit = bound ?? DefaultBound;
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not within {limit.TotalSeconds:0.#} s");
            }
            await Task.Delay(Interval);
        }
    }

    /// <summary>Retries an assertion until it passes or the bound is up, then rethrows its last failure.</summary>
    public static async Task<T> AssertAsync<T>(Func<Task<T>> attempt, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultBound);
        while (true)
        {
            try
            {
                return await attempt();
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(Interval * 5);
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
