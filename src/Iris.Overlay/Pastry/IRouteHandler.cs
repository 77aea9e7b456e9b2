using Iris.Overlay.Transport;

namespace Iris.Overlay.Pastry;

/// <summary>A routed message that reached the root of its key.</summary>
internal readonly record struct RouteDelivery(NodeKey Key, NodeHandle Origin, ushort Channel, ReadOnlyMemory<byte> Payload, int Hops);

/// <summary>Receives the routed messages of one channel that end on this node. Called outside the node's lock, one
/// message at a time per transport connection; must not block.</summary>
internal interface IRouteHandler
{
    void Deliver(RouteDelivery delivery);
}
