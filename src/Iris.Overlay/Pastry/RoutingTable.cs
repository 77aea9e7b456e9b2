using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

/// <summary>
/// Pastry's routing table: row r, column d holds a node that shares the first r digits with this node and has d as
/// its next digit. The column of this node's own digit in each row stays empty. Without proximity information the
/// first live node found for a slot keeps it.
/// </summary>
internal sealed class RoutingTable
{
    private readonly NodeKey _self;
    private readonly NodeHandle?[] _slots = new NodeHandle?[NodeKey.DigitCount * NodeKey.Base];

    public RoutingTable(NodeKey self) => _self = self;

    /// <summary>Number of filled slots.</summary>
    public int Count { get; private set; }

    public NodeHandle? Get(int row, int column) => _slots[(row * NodeKey.Base) + column];

    /// <summary>The slot a key belongs in, or false for this node's own key.</summary>
    public bool TryGetSlot(NodeKey key, out int row, out int column)
    {
        row = _self.SharedPrefixLength(key);
        if (row == NodeKey.DigitCount)
        {
            column = -1;
            return false;
        }

        column = key.Digit(row);
        return true;
    }

    /// <summary>Whether <paramref name="key"/> would fill an empty slot.</summary>
    public bool HasRoomFor(NodeKey key) => TryGetSlot(key, out var row, out var column) && Get(row, column) is null;

    public bool Contains(NodeKey key) => TryGetSlot(key, out var row, out var column) && Get(row, column) is { } entry && entry.Key == key;

    /// <summary>Puts <paramref name="handle"/> in its slot if the slot is empty; a known node's new address replaces
    /// the old one.</summary>
    public bool TryAdd(NodeHandle handle)
    {
        if (!TryGetSlot(handle.Key, out var row, out var column))
        {
            return false;
        }

        ref var slot = ref _slots[(row * NodeKey.Base) + column];
        if (slot is { } existing)
        {
            if (existing.Key == handle.Key && existing.Address != handle.Address)
            {
                slot = handle;
            }

            return false;
        }

        slot = handle;
        Count++;
        return true;
    }

    /// <summary>Removes the node with <paramref name="key"/>; returns its row, or -1 when it was not in the table.</summary>
    public int Remove(NodeKey key)
    {
        if (!TryGetSlot(key, out var row, out var column))
        {
            return -1;
        }

        ref var slot = ref _slots[(row * NodeKey.Base) + column];
        if (slot is { } existing && existing.Key == key)
        {
            slot = null;
            Count--;
            return row;
        }

        return -1;
    }

    /// <summary>The filled slots of one row.</summary>
    public NodeHandle[] Row(int row)
    {
        var result = new List<NodeHandle>(NodeKey.Base);
        for (var column = 0; column < NodeKey.Base; column++)
        {
            if (Get(row, column) is { } entry)
            {
                result.Add(entry);
            }
        }

        return [.. result];
    }

    /// <summary>The filled slots of rows 0 to <paramref name="lastRow"/>, row by row.</summary>
    public List<NodeHandle> Rows(int lastRow)
    {
        var result = new List<NodeHandle>();
        var end = Math.Min(lastRow + 1, NodeKey.DigitCount) * NodeKey.Base;
        for (var i = 0; i < end; i++)
        {
            if (_slots[i] is { } entry)
            {
                result.Add(entry);
            }
        }

        return result;
    }

    /// <summary>Every filled slot.</summary>
    public IEnumerable<NodeHandle> All()
    {
        foreach (var slot in _slots)
        {
            if (slot is { } entry)
            {
                yield return entry;
            }
        }
    }
}
