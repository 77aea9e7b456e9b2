using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

/// <summary>A routed message that reached the root of its key.</summary>
internal readonly record struct RouteDelivery(NodeKey Key, NodeHandle Origin, ushort Channel, ReadOnlyMemory<byte> Payload, int Hops);

/// <summary>A message sent straight to this node with <see cref="PastryNode.SendDirect"/>.</summary>
internal readonly record struct DirectDelivery(NodeHandle From, ushort Channel, ReadOnlyMemory<byte> Payload);

/// <summary>The application side of one channel of a <see cref="PastryNode"/>. Called outside the node's lock; must
/// not block.</summary>
internal interface IRouteHandler
{
    /// <summary>Whether <see cref="Forward"/> should be called on every intermediate hop.</summary>
    bool InterceptsForwarding => false;

    /// <summary>A routed message ends on this node, the root of its key.</summary>
    void Deliver(RouteDelivery delivery);

    /// <summary>A routed message passes through this node on its way to the root (only when
    /// <see cref="InterceptsForwarding"/>). Return false to take it here and stop it.</summary>
    bool Forward(RouteDelivery message, NodeHandle previousHop) => true;

    /// <summary>A message sent straight to this node arrived (once, even if retransmitted).</summary>
    void ReceiveDirect(DirectDelivery delivery)
    {
    }

    /// <summary>A message this node sent straight to <paramref name="to"/> was never acknowledged; the node is
    /// taken as dead.</summary>
    void DirectFailed(NodeHandle to, ushort channel, ReadOnlyMemory<byte> payload)
    {
    }
}
