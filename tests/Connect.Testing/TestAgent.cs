using Connect.Client;

namespace Connect.Testing;

/// <summary>The real agent (ConnectAgent) running in this process against test nodes.</summary>
public sealed class TestAgent : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _log = [];

    private TestAgent(ConnectAgent agent, AgentOptions options)
    {
        Agent = agent;
        Options = options;
    }

    public ConnectAgent Agent { get; }

    public AgentOptions Options { get; }

    public Task Run { get; private set; } = Task.CompletedTask;

    public IReadOnlyList<string> Log { get { lock (_log) { return _log.ToArray(); } } }

    public static async Task<TestAgent> StartAsync(string session, IEnumerable<Uri> servers, string? allow = null, int links = 1, string token = TestNode.Token, bool waitConnected = true, Func<AgentOptions, AgentOptions>? configure = null)
    {
        var options = new AgentOptions
        {
            Servers = servers.ToList(),
            Session = session,
            Token = token,
            Allow = allow is null ? AllowList.Default : AllowList.Parse([allow]),
            Links = links,
            ReconnectMinDelay = TimeSpan.FromMilliseconds(100),
            ReconnectMaxDelay = TimeSpan.FromSeconds(1),
            StatusInterval = TimeSpan.Zero,
            ShutdownGrace = TimeSpan.FromSeconds(10),
            // A refusing server sits out a short while here (30 s and more in production), so a test of an agent
            // that every server refuses sees it give up within seconds.
            RefusalBackoff = TimeSpan.FromMilliseconds(50),
            RefusalBackoffMax = TimeSpan.FromMilliseconds(400),
        };
        options = configure?.Invoke(options) ?? options;
        TestAgent? created = null;
        var agent = new ConnectAgent(options, line =>
        {
            lock (created!._log)
            {
                created._log.Add(line);
            }
        });
        created = new TestAgent(agent, options);
        created.Run = Task.Run(() => agent.RunAsync(created._stop.Token));
        if (waitConnected)
        {
            await created.WaitForLinksAsync(links, TimeSpan.FromSeconds(20));
        }
        return created;
    }

    /// <summary>Waits until the agent holds <paramref name="count"/> links that are not going away.</summary>
    public async Task WaitForLinksAsync(int count, TimeSpan timeout)
    {
        try
        {
            await Eventually.UntilAsync(() => Run.IsCompleted || Agent.Links.Count(l => !l.Mux.IsGoingAway) >= count, $"agent holding {count} links", timeout);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; log:\n{string.Join("\n", Log)}");
        }
        if (Run.IsCompleted)
        {
            await Run; // surfaces the agent's failure
            throw new InvalidOperationException("agent stopped");
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Run.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception) when (Run.IsFaulted)
        {
        }
        _stop.Dispose();
    }
}
