namespace Iris.Overlay.Transport;

/// <summary>A node as the ring knows it: its key and the address that reaches it.</summary>
public readonly record struct NodeHandle(NodeKey Key, NodeAddress Address)
{
    /// <inheritdoc />
    public override string ToString() => $"{Key.ToShortString()}@{Address}";
}
