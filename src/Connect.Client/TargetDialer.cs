using System.Net;
using System.Net.Sockets;
using Connect.Tunnel.Frames;
using Connect.Tunnel.Targets;

namespace Connect.Client;

/// <summary>
/// Decides whether the agent may reach a target and dials it. The host is canonicalised first (<see cref="TargetHost"/>).
/// An address is checked against the address rules; a name that a name rule allows is resolved and dialled; any
/// other name is resolved here, once, and allowed only when <b>every</b> address it resolves to is inside an address
/// rule. The socket then connects to exactly the addresses that were checked, never to a second lookup's answer, so
/// a name that changes its answer between check and dial (DNS rebinding) gains nothing.
/// </summary>
public sealed class TargetDialer(AllowList allow, IHostResolver resolver, TimeSpan dialTimeout)
{
    /// <summary>A connected socket, or why there is none (an OPEN_ERR code and words for the proxy client).</summary>
    public readonly record struct Result(Socket? Socket, OpenErrorCode Error, string Reason);

    public async Task<Result> DialAsync(string target, CancellationToken cancellationToken = default)
    {
        if (!TargetAddress.TryParse(target, out var hostText, out var port))
        {
            return Refused(OpenErrorCode.BadTarget, $"'{target}' is not host:port");
        }
        if (!TargetHost.TryParse(hostText, out var host, out var error))
        {
            return Refused(OpenErrorCode.BadTarget, $"{target}: {error}");
        }
        var rules = allow.Rules;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(dialTimeout);

        IPAddress[] addresses;
        if (host.Address is { } literal)
        {
            if (!rules.AllowsAddress(literal, port))
            {
                return NotAllowed(target, string.Empty);
            }
            addresses = [literal];
        }
        else if (rules.AllowsName(host.Name!, port))
        {
            var resolved = await ResolveAsync(host.Name!, timeout.Token).ConfigureAwait(false);
            if (resolved.Length == 0)
            {
                return timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                    ? Refused(OpenErrorCode.Timeout, $"{target}: the name did not resolve within {dialTimeout.TotalSeconds:0} s")
                    : Refused(OpenErrorCode.NameNotResolved, $"{target}: name not resolved on the agent's side");
            }
            addresses = resolved;
        }
        else if (rules.HasAddressRuleFor(port))
        {
            // Only address rules could allow this name: resolve it once and check every answer.
            addresses = await ResolveAsync(host.Name!, timeout.Token).ConfigureAwait(false);
            if (addresses.Length == 0)
            {
                return NotAllowed(target, ": the name does not resolve on the agent's side, so no address rule can allow it");
            }
            var outside = addresses.Where(a => !rules.AllowsAddress(a, port)).ToList();
            if (outside.Count > 0)
            {
                return NotAllowed(target, $": it resolves to {string.Join(", ", addresses.Select(a => a.ToString()))}, and {string.Join(", ", outside.Select(a => a.ToString()))} {(outside.Count == 1 ? "is" : "are")} outside it");
            }
        }
        else
        {
            return NotAllowed(target, string.Empty);
        }
        return await ConnectAsync(target, addresses, port, timeout, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IPAddress[]> ResolveAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var addresses = await resolver.ResolveAsync(name, cancellationToken).ConfigureAwait(false);
            return addresses.Select(TargetHost.Canonical).Distinct().ToArray();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ArgumentException)
        {
            return [];
        }
    }

    private async Task<Result> ConnectAsync(string target, IPAddress[] addresses, int port, CancellationTokenSource timeout, CancellationToken cancellationToken)
    {
        var last = new Result(null, OpenErrorCode.Internal, $"{target}: no address to dial");
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), timeout.Token).ConfigureAwait(false);
                return new Result(socket, OpenErrorCode.Internal, string.Empty);
            }
            catch (OperationCanceledException)
            {
                socket.Dispose();
                return cancellationToken.IsCancellationRequested
                    ? Refused(OpenErrorCode.Internal, $"{target}: the agent is stopping")
                    : Refused(OpenErrorCode.Timeout, $"{target}: no answer within {dialTimeout.TotalSeconds:0} s");
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = Describe(target, e); // try the next address, as a resolver-driven connect would
            }
        }
        return last;
    }

    private static Result Describe(string target, SocketException e)
    {
        var code = e.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => OpenErrorCode.ConnectionRefused,
            SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => OpenErrorCode.NameNotResolved,
            SocketError.NetworkUnreachable or SocketError.HostUnreachable or SocketError.HostDown or SocketError.NetworkDown or SocketError.AddressFamilyNotSupported => OpenErrorCode.Unreachable,
            SocketError.TimedOut => OpenErrorCode.Timeout,
            _ => OpenErrorCode.Internal,
        };
        var text = code switch
        {
            OpenErrorCode.ConnectionRefused => "connection refused by the target",
            OpenErrorCode.NameNotResolved => "name not resolved on the agent's side",
            OpenErrorCode.Unreachable => "target unreachable from the agent",
            OpenErrorCode.Timeout => "connection timed out",
            _ => e.Message,
        };
        return Refused(code, $"{target}: {text}");
    }

    private Result NotAllowed(string target, string why) =>
        Refused(OpenErrorCode.NotAllowed, $"{target} is not in the agent's allow-list ({allow}){why}");

    private static Result Refused(OpenErrorCode code, string reason) => new(null, code, reason);
}
