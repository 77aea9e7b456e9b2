using System.Collections.Concurrent;

namespace Iris.Tunnels;

/// <summary>The tunnels one member serves: an end leaves the set as it ends, and the member's leaving ends them all.</summary>
internal sealed class TunnelSet
{
    private readonly ConcurrentDictionary<Guid, TunnelEnd> _ends = new();

    public int Count => _ends.Count;

    public void Add(TunnelEnd end) => _ends[end.Id] = end;

    public void Remove(TunnelEnd end) => _ends.TryRemove(new KeyValuePair<Guid, TunnelEnd>(end.Id, end));

    /// <summary>Ends every tunnel of the set with <paramref name="reason"/>, telling each peer.</summary>
    public void EndAll(TunnelCloseReason reason)
    {
        foreach (var end in _ends.Values)
        {
            end.End(reason, null, notifyPeer: true);
        }
    }
}
