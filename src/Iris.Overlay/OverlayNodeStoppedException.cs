namespace Iris.Overlay;

/// <summary>
/// The overlay node was asked to send after it left the ring, crashed or was disposed. Nothing was sent, and a
/// request waiting on that node fails with this error instead of waiting for its timeout. A stopped node does not
/// come back: send through a node that is running (for a silo, after it restarted).
/// </summary>
public sealed class OverlayNodeStoppedException : InvalidOperationException
{
    /// <summary>Creates the exception for the node <paramref name="node"/> (its key and address).</summary>
    public OverlayNodeStoppedException(string node, string action)
        : base($"Overlay node {node} cannot {action}: it has stopped (left, crashed or disposed) and is no longer part of a ring.")
    {
    }
}
