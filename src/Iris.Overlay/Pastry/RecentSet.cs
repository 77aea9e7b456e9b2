namespace Iris.Overlay.Pastry;

/// <summary>A set that remembers only its last <c>capacity</c> additions: enough to spot retransmitted hops.</summary>
internal sealed class RecentSet<T>(int capacity)
    where T : notnull
{
    private readonly HashSet<T> _members = new(capacity);
    private readonly Queue<T> _order = new(capacity);

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
