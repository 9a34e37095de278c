using System.Net;
using Connect.Tunnel.Targets;

namespace Connect.Client;

/// <summary>
/// A hosts-format file (<c>ADDRESS NAME [NAME...]</c>, <c>#</c> comments) consulted before the fallback resolver; a
/// name listed on several lines has all their addresses. A test and operations hook, set with the environment
/// variable <see cref="AgentCommandLine.HostsFileVariable"/>: it lets a test make a name resolve to any address
/// without touching the machine's DNS, and lets an operator pin names for the agent alone.
/// </summary>
public sealed class HostsFileResolver : IHostResolver
{
    private readonly Dictionary<string, IPAddress[]> _entries;
    private readonly IHostResolver _fallback;

    private HostsFileResolver(string path, Dictionary<string, IPAddress[]> entries, IHostResolver fallback)
    {
        Path = path;
        _entries = entries;
        _fallback = fallback;
    }

    public string Path { get; }

    public int Count => _entries.Count;

    /// <summary>Reads the file once; throws <see cref="ArgumentException"/> naming the file and line when it cannot be used.</summary>
    public static HostsFileResolver Load(string path, IHostResolver fallback)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"hosts file '{path}' cannot be read: {e.Message}");
        }
        var entries = new Dictionary<string, List<IPAddress>>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var hash = line.IndexOf('#');
            var fields = (hash >= 0 ? line[..hash] : line).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                continue;
            }
            if (fields.Length < 2 || !IPAddress.TryParse(fields[0], out var address))
            {
                throw new ArgumentException($"hosts file '{path}' line {i + 1}: expected 'ADDRESS NAME [NAME...]', got '{line.Trim()}'");
            }
            foreach (var field in fields.Skip(1))
            {
                if (!TargetHost.TryParse(field, out var name, out var error) || name.IsAddress)
                {
                    throw new ArgumentException($"hosts file '{path}' line {i + 1}: '{field}' is not a host name{(error.Length > 0 ? ": " + error : string.Empty)}");
                }
                if (!entries.TryGetValue(name.Name!, out var list))
                {
                    entries[name.Name!] = list = [];
                }
                list.Add(address);
            }
        }
        return new HostsFileResolver(path, entries.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal), fallback);
    }

    public Task<IPAddress[]> ResolveAsync(string name, CancellationToken cancellationToken) =>
        _entries.TryGetValue(name, out var addresses) ? Task.FromResult(addresses) : _fallback.ResolveAsync(name, cancellationToken);
}
