using System.Security.Cryptography;
using System.Text;

namespace Connect.Routing.NodeChannel;

/// <summary>
/// Authenticates a node-to-node data channel before any frame flows, both ways (connect-node/2):
/// <list type="number">
/// <item>the listener sends a random 32-byte nonce;</item>
/// <item>the dialer sends its own 32-byte nonce and proof = HMAC-SHA256(key, "dialer"), where the per-connection
/// key = HMAC-SHA256(secret, "connect-node/2 key" || listener nonce || dialer nonce);</item>
/// <item>the listener checks the proof in constant time and answers <see cref="Accepted"/> followed by its own proof
/// HMAC-SHA256(key, "listener"), or <see cref="Refused"/> and closes;</item>
/// <item>the dialer checks the listener's proof: a listener that does not know the secret is refused too.</item>
/// </list>
/// Both nonces go into the key, so neither side can replay a proof recorded on another connection. A stranger on the
/// data port gets nothing but a nonce and a closed socket; a stranger posing as a node gets nothing at all.
/// </summary>
public static class NodeChannelHandshake
{
    public const int NonceSize = 32;
    public const int ProofSize = 32;
    public const byte Accepted = 1;
    public const byte Refused = 0;
    private static readonly byte[] KeyLabel = "connect-node/2 key"u8.ToArray();
    private static readonly byte[] DialerLabel = "connect-node/2 dialer"u8.ToArray();
    private static readonly byte[] ListenerLabel = "connect-node/2 listener"u8.ToArray();

    public static byte[] SecretBytes(string secret) => Encoding.UTF8.GetBytes(secret);

    /// <summary>The per-connection key both sides derive from the shared secret and both nonces.</summary>
    public static byte[] DeriveKey(byte[] secret, ReadOnlySpan<byte> listenerNonce, ReadOnlySpan<byte> dialerNonce)
    {
        var input = new byte[KeyLabel.Length + listenerNonce.Length + dialerNonce.Length];
        KeyLabel.CopyTo(input, 0);
        listenerNonce.CopyTo(input.AsSpan(KeyLabel.Length));
        dialerNonce.CopyTo(input.AsSpan(KeyLabel.Length + listenerNonce.Length));
        return HMACSHA256.HashData(secret, input);
    }

    public static byte[] DialerProof(byte[] key) => HMACSHA256.HashData(key, DialerLabel);

    public static byte[] ListenerProof(byte[] key) => HMACSHA256.HashData(key, ListenerLabel);

    /// <summary>Listener side; returns the connection key, or null (and the caller closes the socket) when the dialer fails to prove the secret.</summary>
    public static async Task<byte[]?> AcceptAsync(Stream stream, byte[] secret, CancellationToken cancellationToken)
    {
        var listenerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        await stream.WriteAsync(listenerNonce, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        var answer = new byte[NonceSize + ProofSize];
        await stream.ReadExactlyAsync(answer, cancellationToken).ConfigureAwait(false);
        var key = DeriveKey(secret, listenerNonce, answer.AsSpan(0, NonceSize));
        if (!CryptographicOperations.FixedTimeEquals(DialerProof(key), answer.AsSpan(NonceSize)))
        {
            await stream.WriteAsync(new[] { Refused }, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }
        var reply = new byte[1 + ProofSize];
        reply[0] = Accepted;
        ListenerProof(key).CopyTo(reply, 1);
        await stream.WriteAsync(reply, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        return key;
    }

    /// <summary>Dialer side; returns the connection key. Throws when the listener refuses (secrets differ) or cannot prove the secret itself.</summary>
    public static async Task<byte[]> DialAsync(Stream stream, byte[] secret, CancellationToken cancellationToken)
    {
        var listenerNonce = new byte[NonceSize];
        await stream.ReadExactlyAsync(listenerNonce, cancellationToken).ConfigureAwait(false);
        var dialerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        var key = DeriveKey(secret, listenerNonce, dialerNonce);
        var answer = new byte[NonceSize + ProofSize];
        dialerNonce.CopyTo(answer, 0);
        DialerProof(key).CopyTo(answer, NonceSize);
        await stream.WriteAsync(answer, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        var status = new byte[1];
        await stream.ReadExactlyAsync(status, cancellationToken).ConfigureAwait(false);
        if (status[0] != Accepted)
        {
            throw new IOException("the peer node refused the data channel handshake (Connect:Cluster:DataSecret differs)");
        }
        var proof = new byte[ProofSize];
        try
        {
            await stream.ReadExactlyAsync(proof, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new IOException("the peer accepted the data channel handshake without proving the secret (not a Connect node of this cluster, or an old version)");
        }
        if (!CryptographicOperations.FixedTimeEquals(ListenerProof(key), proof))
        {
            throw new IOException("the peer could not prove the data channel secret (not a Connect node of this cluster, or Connect:Cluster:DataSecret differs)");
        }
        return key;
    }
}
