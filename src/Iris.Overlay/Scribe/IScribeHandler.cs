using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

/// <summary>
/// Where Scribe hands over what reaches this node's members. The overlay decides where a message goes; what the
/// payload means (and whether it is the data itself or a ticket for data carried another way) is the caller's.
/// Called outside Scribe's lock; must not block.
/// </summary>
internal interface IScribeHandler
{
    /// <summary>A multicast reached <paramref name="member"/>, once.</summary>
    void OnMulticast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin);

    /// <summary>An anycast chose <paramref name="member"/>.</summary>
    void OnAnycast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin);

    /// <summary>An anycast this node sent found no member with capacity in the whole group.</summary>
    void OnNoMembers(NodeKey group, ScribeMessageId id);
}

/// <summary>A child of this node in a group's tree, with the capacity its subtree reported.</summary>
public readonly record struct ScribeChild(NodeHandle Node, double Capacity);

/// <summary>What one node knows of one group's tree.</summary>
public sealed record GroupSnapshot(
    NodeKey Group,
    bool IsRoot,
    NodeHandle? Parent,
    IReadOnlyList<ScribeChild> Children,
    IReadOnlyDictionary<string, double> Members,
    IReadOnlyList<NodeKey> Path,
    double AboveCapacity)
{
    /// <summary>This node's members plus everything its children report.</summary>
    public double SubtreeCapacity => Members.Values.Sum() + Children.Sum(c => c.Capacity);
}
