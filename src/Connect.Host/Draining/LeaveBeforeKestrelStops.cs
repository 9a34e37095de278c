using Akka.Actor;

namespace Connect.Host.Draining;

/// <summary>
/// The stop order of a node: drain (public listeners closed, links and proxy requests finished), then leave the
/// cluster and hand the session entities off, and only then stop Kestrel. Without this the host stops Kestrel first
/// (ASP.NET Core stops its server before the hosted services registered ahead of it, Akka's among them), so during
/// the leave and hand-off <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> no longer answered. Kestrel has nothing
/// left to finish by then except the admin listener, which is what an operator watches the hand-off through.
/// </summary>
public sealed class LeaveBeforeKestrelStops(NodeLifecycle lifecycle, IServiceProvider services) : IHostedLifecycleService
{
    /// <summary>
    /// Runs before any hosted service's StopAsync (Kestrel's included). Waits for the drain (the same one
    /// <see cref="NodeLifecycle"/> runs, whichever starts it), then runs Akka's coordinated shutdown: leave, hand-off,
    /// actor system terminated. Akka.Hosting's own stop later finds it done. The host's token bounds the wait.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await lifecycle.DrainAsync("node shutting down", cancellationToken).ConfigureAwait(false);
        var system = services.GetService<ActorSystem>();
        if (system is null || system.WhenTerminated.IsCompleted)
        {
            return;
        }
        await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
