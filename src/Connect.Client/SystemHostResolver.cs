using System.Net;

namespace Connect.Client;

/// <summary>The operating system's resolver (hosts file, DNS), as every other program on the customer's machine sees names.</summary>
public sealed class SystemHostResolver : IHostResolver
{
    public static readonly SystemHostResolver Instance = new();

    private SystemHostResolver()
    {
    }

    public Task<IPAddress[]> ResolveAsync(string name, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(name, cancellationToken);
}
