using System.Net.Sockets;
using System.Security.Cryptography;

namespace Connect.Testing;

/// <summary>Sends <c>size</c> deterministic bytes through a tunnel to an echo server while reading the echo, both hashed.</summary>
public static class EchoTransfer
{
    public sealed record Result(byte[] SentHash, long Received, byte[] ReceivedHash);

    public static async Task<Result> RunAsync(ProxyClient.ConnectResult tunnel, long size, TimeSpan bound)
    {
        var upload = Task.Run(async () =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            for (long sent = 0; sent < size; sent += buffer.Length)
            {
                var chunk = buffer.AsMemory(0, (int)Math.Min(buffer.Length, size - sent));
                DeterministicBytes.Fill(chunk.Span, sent);
                sha.AppendData(chunk.Span);
                await tunnel.Stream.WriteAsync(chunk);
            }
            tunnel.Socket.Shutdown(SocketShutdown.Send);
            return sha.GetHashAndReset();
        });
        var download = Task.Run(async () =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long total = 0;
            int read;
            while ((read = await tunnel.Stream.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                total += read;
            }
            return (total, sha.GetHashAndReset());
        });
        var sentHash = await upload.WaitAsync(bound);
        var (received, receivedHash) = await download.WaitAsync(bound);
        return new Result(sentHash, received, receivedHash);
    }
}
