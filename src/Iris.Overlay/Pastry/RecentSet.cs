namespace Iris.Overlay.Pastry;

/// <summary>A set that remembers only its last <c>capacity</c> additions: enough to spot retransmitted hops.</summary>
/// <remarks>Grows as items come instead of reserving <c>capacity</c> up front: a node that routes little would
/// otherwise hold about 300 KB of empty slots (4,096 hop ids), most of a simulated node's memory.</remarks>
internal sealed class RecentSet<T>(int capacity)
    where T : notnull
{
    private readonly HashSet<T> _members = [];
    private readonly Queue<T> _order = new();

    /// <summary>Adds <paramref name="item"/>; false when it is already among the recent ones.</summary>
    public bool Add(T item)
    {
        if (!_members.Add(item))
        {
            return false;
        }

        _order.Enqueue(item);
        if (_order.Count > capacity)
        {
            _members.Remove(_order.Dequeue());
        }

        return true;
    }
}
