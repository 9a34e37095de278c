using System.Net;

namespace Connect.Client;

/// <summary>Turns a host name into addresses on the agent's side. Injectable so tests decide what a name resolves to.</summary>
public interface IHostResolver
{
    /// <summary>Every address of <paramref name="name"/> (a canonical name, see <c>TargetHost</c>); empty or an exception when it does not resolve.</summary>
    Task<IPAddress[]> ResolveAsync(string name, CancellationToken cancellationToken);
}
