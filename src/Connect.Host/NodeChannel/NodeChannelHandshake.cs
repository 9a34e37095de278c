using System.Security.Cryptography;
using System.Text;

namespace Connect.Host.NodeChannel;

/// <summary>
/// Authenticates a node-to-node data channel before any frame flows: the listener sends a random 32-byte
/// challenge, the dialer answers HMAC-SHA256(secret, "connect-node/1" || challenge), the listener checks it in
/// constant time and answers one status byte. A stranger on the data port gets nothing but a closed socket.
/// </summary>
public static class NodeChannelHandshake
{
    public const int ChallengeSize = 32;
    public const byte Accepted = 1;
    private static readonly byte[] Label = "connect-node/1"u8.ToArray();

    public static byte[] Answer(byte[] secret, ReadOnlySpan<byte> challenge)
    {
        var input = new byte[Label.Length + challenge.Length];
        Label.CopyTo(input, 0);
        challenge.CopyTo(input.AsSpan(Label.Length));
        return HMACSHA256.HashData(secret, input);
    }

    public static bool Verify(byte[] secret, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> answer) =>
        CryptographicOperations.FixedTimeEquals(Answer(secret, challenge), answer);

    public static byte[] SecretBytes(string secret) => Encoding.UTF8.GetBytes(secret);

    /// <summary>Listener side; returns false (and the caller closes the socket) when the dialer fails the challenge.</summary>
    public static async Task<bool> AcceptAsync(Stream stream, byte[] secret, CancellationToken cancellationToken)
    {
        var challenge = RandomNumberGenerator.GetBytes(ChallengeSize);
        await stream.WriteAsync(challenge, cancellationToken).ConfigureAwait(false);
        var answer = new byte[32];
        await stream.ReadExactlyAsync(answer, cancellationToken).ConfigureAwait(false);
        var ok = Verify(secret, challenge, answer);
        await stream.WriteAsync(new[] { ok ? Accepted : (byte)0 }, cancellationToken).ConfigureAwait(false);
        return ok;
    }

    /// <summary>Dialer side; throws when the listener refuses the answer (secrets differ).</summary>
    public static async Task DialAsync(Stream stream, byte[] secret, CancellationToken cancellationToken)
    {
        var challenge = new byte[ChallengeSize];
        await stream.ReadExactlyAsync(challenge, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(Answer(secret, challenge), cancellationToken).ConfigureAwait(false);
        var status = new byte[1];
        await stream.ReadExactlyAsync(status, cancellationToken).ConfigureAwait(false);
        if (status[0] != Accepted)
        {
            throw new IOException("the peer node refused the data channel handshake (Connect:Cluster:DataSecret differs)");
        }
    }
}
