using Connect.Host.Configuration;

namespace Connect.Host.Security;

/// <summary>Logs, once at start-up, what the configuration allows that an operator should know about (a token for every session).</summary>
public sealed partial class StartupWarnings(TokenStore tokens, ILogger<StartupWarnings> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var warning in tokens.Warnings)
        {
            Log.BroadToken(logger, warning);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "{Warning}")]
        public static partial void BroadToken(ILogger logger, string warning);
    }
}
