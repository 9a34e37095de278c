using Akka.Actor;
using Akka.Remote;
using Akka.Remote.Transport;
using Connect.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Connect.Cluster.Tests.Support;

/// <summary>
/// Cuts the network between in-process nodes as a partition would, while agents and proxy clients still reach every
/// node. Akka.Remote is cut with Akka's throttler transport adapter (<see cref="Hocon"/> must be in each node's
/// <c>Connect:Cluster:Hocon</c>): a blackhole drops every remoting frame both ways, so heartbeats stop and the failure
/// detector and the split-brain resolver see what they would see in a real partition. The node data channel (plain TCP,
/// not Akka) is cut by <see cref="CuttableStreamOpener"/>, which each node must be started with
/// (<see cref="Configure"/>).
/// </summary>
public static class NetworkPartition
{
    /// <summary>Puts the throttler adapter in front of dot-netty TCP (Akka's failure-injection transport).</summary>
    public const string Hocon = "akka.remote.dot-netty.tcp.applied-adapters = [trttl]";

    /// <summary>Node settings for a cuttable cluster; <paramref name="more"/> are added (its Hocon is appended).</summary>
    public static Dictionary<string, string?> Settings(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>(more ?? new Dictionary<string, string?>());
        settings["Connect:Cluster:Hocon"] = settings.TryGetValue("Connect:Cluster:Hocon", out var hocon) && !string.IsNullOrEmpty(hocon)
            ? hocon + "\n" + Hocon
            : Hocon;
        return settings;
    }

    /// <summary>Replaces the node's remote stream opener with one that the test can cut (wraps the real node channel pool).</summary>
    public static void Configure(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder) =>
        builder.Services.AddSingleton<Connect.Routing.Streams.IRemoteStreamOpener>(sp =>
            new CuttableStreamOpener(sp.GetRequiredService<Connect.Routing.NodeChannel.NodeChannelPool>()));

    /// <summary>Cuts every node of <paramref name="side"/> from every node of <paramref name="other"/>, both ways.</summary>
    public static async Task CutAsync(IReadOnlyCollection<TestNode> side, IReadOnlyCollection<TestNode> other)
    {
        foreach (var a in side)
        {
            foreach (var b in other)
            {
                await ThrottleAsync(a, b, Blackhole.Instance);
                await ThrottleAsync(b, a, Blackhole.Instance);
                Opener(a).Cut(b.Identity.DataEndpoint);
                Opener(b).Cut(a.Identity.DataEndpoint);
            }
        }
    }

    /// <summary>Heals what <see cref="CutAsync"/> cut (nodes already stopped are skipped).</summary>
    public static async Task HealAsync(IReadOnlyCollection<TestNode> side, IReadOnlyCollection<TestNode> other)
    {
        foreach (var a in side)
        {
            foreach (var b in other)
            {
                await TryAsync(() => ThrottleAsync(a, b, Unthrottled.Instance));
                await TryAsync(() => ThrottleAsync(b, a, Unthrottled.Instance));
                await TryAsync(() => { Opener(a).Heal(b.Identity.DataEndpoint); return Task.CompletedTask; });
                await TryAsync(() => { Opener(b).Heal(a.Identity.DataEndpoint); return Task.CompletedTask; });
            }
        }
    }

    private static CuttableStreamOpener Opener(TestNode node) =>
        node.Services.GetRequiredService<Connect.Routing.Streams.IRemoteStreamOpener>() as CuttableStreamOpener
        ?? throw new InvalidOperationException("start the node with NetworkPartition.Configure to cut its data channel");

    private static async Task ThrottleAsync(TestNode on, TestNode peer, ThrottleMode mode)
    {
        var system = on.Services.GetRequiredService<ActorSystem>();
        var peerAddress = Akka.Cluster.Cluster.Get(peer.Services.GetRequiredService<ActorSystem>()).SelfAddress;
        // The throttler matches on host and port only (it strips the protocol and system name).
        var provider = (IRemoteActorRefProvider)((ExtendedActorSystem)system).Provider;
        var ok = await provider.Transport.ManagementCommand(new SetThrottle(peerAddress, ThrottleTransportAdapter.Direction.Both, mode))
            .WaitAsync(TimeSpan.FromSeconds(10));
        if (!ok)
        {
            throw new InvalidOperationException($"the throttler did not take {mode} for {peerAddress} on {on.Address}");
        }
    }

    private static async Task TryAsync(Func<Task> heal)
    {
        try
        {
            await heal();
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or TimeoutException or AggregateException or TaskCanceledException or RemoteTransportException)
        {
            // A node that was downed and stopped has nothing left to heal.
        }
    }
}
