using System.Collections.Concurrent;

namespace Iris.Grains.Rendezvous;

/// <summary>The keys of the rendezvous grains active on this silo (<c>cluster/name#split</c>): the splits whose ring
/// root this silo is. Read by the silo's status.</summary>
internal sealed class LocalRendezvous
{
    private readonly ConcurrentDictionary<string, int> _keys = new(StringComparer.Ordinal);

    public void Activated(string key) => _keys.AddOrUpdate(key, 1, static (_, count) => count + 1);

    public void Deactivated(string key)
    {
        while (_keys.TryGetValue(key, out var count))
        {
            if (count <= 1 ? _keys.TryRemove(new KeyValuePair<string, int>(key, count)) : _keys.TryUpdate(key, count - 1, count))
            {
                return;
            }
        }
    }

    public string[] Keys => [.. _keys.Keys.Order(StringComparer.Ordinal)];
}
