using System.Collections.Concurrent;

namespace Connect.Routing.Links;

/// <summary>The links whose sockets terminate on this node; the stream broker finds local links here, and readiness asks it whether the node still holds any.</summary>
public sealed class LinkRegistry
{
    private readonly ConcurrentDictionary<string, TunnelLink> _links = new();

    public int Count => _links.Count;

    public IReadOnlyCollection<TunnelLink> All => _links.Values.ToArray();

    public int ActiveStreams => _links.Values.Sum(l => l.Mux.ActiveStreams);

    public void Add(TunnelLink link)
    {
        if (!_links.TryAdd(link.LinkId, link))
        {
            throw new InvalidOperationException($"link {link.LinkId} is already registered");
        }
    }

    public void Remove(string linkId) => _links.TryRemove(linkId, out _);

    public bool TryGet(string linkId, out TunnelLink link) => _links.TryGetValue(linkId, out link!);
}
