using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

/// <summary>One node's part of one group's tree.</summary>
internal sealed class GroupState(NodeKey key)
{
    public NodeKey Key { get; } = key;

    public bool IsRoot { get; set; }

    public NodeHandle? Parent { get; set; }

    /// <summary>A join is on its way and not yet acknowledged.</summary>
    public bool Joining { get; set; }

    public long JoinSentMs { get; set; }

    public long ParentHeardMs { get; set; }

    /// <summary>Keys from the root down to this node, as last heard from the parent (just this node at the root).</summary>
    public NodeKey[] Path { get; set; } = [];

    /// <summary>Capacity of the tree outside this node's subtree, as the parent reported it.</summary>
    public double AboveCapacity { get; set; }

    public Dictionary<NodeKey, Child> Children { get; } = [];

    public Dictionary<string, double> Members { get; } = new(StringComparer.Ordinal);

    public double LocalCapacity => Members.Values.Sum();

    public double ChildrenCapacity => Children.Values.Sum(c => c.Capacity);

    public bool Attached => IsRoot || Parent is not null;

    public bool IsEmpty => Members.Count == 0 && Children.Count == 0;

    internal sealed class Child(NodeHandle node, long heardMs)
    {
        public NodeHandle Node { get; set; } = node;

        public double Capacity { get; set; }

        public long HeardMs { get; set; } = heardMs;
    }
}
