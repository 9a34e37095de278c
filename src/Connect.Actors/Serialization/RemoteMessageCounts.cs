namespace Connect.Actors.Serialization;

/// <summary>
/// How many of Connect's own messages (and their bytes) this node sent to and received from other nodes, per message
/// manifest: counted by <see cref="ConnectMessageSerializer"/> in <c>ToBinary</c>/<c>FromBinary</c>, which Akka.Remote
/// calls once per message that crosses a node boundary and never for a local send (<c>akka.actor.serialize-messages</c>
/// is off, its default, and Connect never turns it on). One array slot per manifest, incremented with
/// <see cref="Interlocked"/>: no lock and no allocation per message, so the count is cheap enough to stay on.
/// </summary>
/// <remarks>
/// What it does not see: Akka's own remoting traffic (cluster heartbeats and gossip, remote-watch heartbeats, the shard
/// coordinator's and DData's messages, system messages such as watch/terminate) travels with Akka's own serializers.
/// docs/SCALING.md estimates those from their settings.
/// </remarks>
public sealed class RemoteMessageCounts
{
    /// <summary>The slot for a manifest this node does not know (a newer node's message): counted, then refused.</summary>
    public const string UnknownType = "unknown";

    private readonly string[] _types;
    private readonly long[] _sent;
    private readonly long[] _received;
    private readonly long[] _sentBytes;
    private readonly long[] _receivedBytes;

    /// <param name="types">The manifests, in slot order; one more slot is added for <see cref="UnknownType"/>.</param>
    public RemoteMessageCounts(IReadOnlyList<string> types)
    {
        _types = [.. types, UnknownType];
        _sent = new long[_types.Length];
        _received = new long[_types.Length];
        _sentBytes = new long[_types.Length];
        _receivedBytes = new long[_types.Length];
    }

    /// <summary>The slot of <see cref="UnknownType"/>.</summary>
    public int UnknownSlot => _types.Length - 1;

    public void CountSent(int slot, int bytes)
    {
        Interlocked.Increment(ref _sent[slot]);
        Interlocked.Add(ref _sentBytes[slot], bytes);
    }

    public void CountReceived(int slot, int bytes)
    {
        Interlocked.Increment(ref _received[slot]);
        Interlocked.Add(ref _receivedBytes[slot], bytes);
    }

    /// <summary>Messages sent to other nodes with manifest <paramref name="type"/> (0 for a manifest not known).</summary>
    public long Sent(string type) => Read(_sent, type);

    /// <summary>Messages received from other nodes with manifest <paramref name="type"/>.</summary>
    public long Received(string type) => Read(_received, type);

    /// <summary>Every manifest with its totals so far (read at a scrape; each number is read on its own, not as one snapshot).</summary>
    public IEnumerable<RemoteMessageTotals> Totals()
    {
        for (var i = 0; i < _types.Length; i++)
        {
            yield return new RemoteMessageTotals(
                _types[i],
                Interlocked.Read(ref _sent[i]),
                Interlocked.Read(ref _received[i]),
                Interlocked.Read(ref _sentBytes[i]),
                Interlocked.Read(ref _receivedBytes[i]));
        }
    }

    private long Read(long[] counts, string type)
    {
        var slot = Array.IndexOf(_types, type);
        return slot < 0 ? 0 : Interlocked.Read(ref counts[slot]);
    }
}
