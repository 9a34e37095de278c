using Akka.Configuration;
using Xunit.Abstractions;

namespace Connect.Testing.Actors;

/// <summary>
/// A TestKit whose ActorSystem is cluster-enabled (the session entity reads its node's address from
/// <c>Cluster.Get</c>) with remoting on a free loopback port, and binds <see cref="Serialization.ConnectMessageSerializer"/>
/// the way the host does (<c>WithCustomSerializer("connect", [typeof(IConnectMessage)], ...)</c> in AkkaSetup).
/// The node never joins a cluster: no test here needs membership.
/// </summary>
public abstract class ActorTestBase(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorConfig, "connect-actors-test", output)
{
    /// <summary>Bound for every wait on a message that must arrive.</summary>
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    public static readonly Config ActorConfig = ConfigurationFactory.ParseString("""
        akka.loglevel = WARNING
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        akka.cluster.log-info = off
        # The node never joins, and most tests end before the cluster daemon has finished starting: leaving
        # through coordinated shutdown then waits out its phase timeout (5 s a test). Terminate plainly.
        akka.coordinated-shutdown.run-by-actor-system-terminate = off
        akka.coordinated-shutdown.terminate-actor-system = off
        akka.cluster.run-coordinated-shutdown-when-down = off
        akka.log-dead-letters-during-shutdown = off
        akka.actor.serializers.connect = "Connect.Actors.Serialization.ConnectMessageSerializer, Connect.Actors"
        akka.actor.serialization-bindings {
          "Connect.Actors.Protocol.IConnectMessage, Connect.Actors" = connect
        }
        akka.actor.serialization-identifiers {
          "Connect.Actors.Serialization.ConnectMessageSerializer, Connect.Actors" = 7701
        }
        """);
}
