namespace Iris.Overlay.Transport;

/// <summary>Wire tag of an overlay message. Values are part of the protocol: never renumber.</summary>
internal enum MessageType : byte
{
    Ping = 1,
    Pong = 2,
    Route = 3,
    RouteAck = 4,
    JoinState = 5,
    RowRequest = 6,
    RowReply = 7,
    Leave = 8,
    Direct = 9,
}

/// <summary>What a routed message is for.</summary>
internal enum RouteKind : byte
{
    /// <summary>A joining node (the origin) looking for the root of its own key.</summary>
    Join = 1,

    /// <summary>An application message, delivered on the key's root to the handler of its channel.</summary>
    Application = 2,
}

/// <summary>A message between two overlay nodes. Every message names its sender, which proves the sender alive.</summary>
internal abstract class OverlayMessage
{
    /// <summary>The node that sent this message (not the origin of a routed message).</summary>
    public required NodeHandle Sender { get; init; }

    /// <summary>The wire tag.</summary>
    public abstract MessageType Type { get; }
}

/// <summary>Fields shared by <see cref="PingMessage"/> and <see cref="PongMessage"/>: leaf-set versions, so a leaf set
/// only travels when the other side has not seen it yet.</summary>
internal abstract class LivenessMessage : OverlayMessage
{
    /// <summary>Version of the sender's leaf set now.</summary>
    public uint LeafVersion { get; init; }

    /// <summary>Version of the receiver's leaf set the sender has last seen (0: never).</summary>
    public uint SeenVersion { get; init; }

    /// <summary>The sender's leaf set, when the receiver has not seen its current version or asked for it.</summary>
    public NodeHandle[]? LeafSet { get; init; }
}

/// <summary>Heartbeat and probe. The receiver answers with a <see cref="PongMessage"/>.</summary>
internal sealed class PingMessage : LivenessMessage
{
    /// <summary>Asks the receiver to include its leaf set in the answer whatever the versions say (probes, repair).</summary>
    public bool WantLeafSet { get; init; }

    public override MessageType Type => MessageType.Ping;
}

/// <summary>Answer to a <see cref="PingMessage"/>.</summary>
internal sealed class PongMessage : LivenessMessage
{
    public override MessageType Type => MessageType.Pong;
}

/// <summary>A message routed hop by hop toward the root of <see cref="Key"/>. Each hop is acknowledged.</summary>
internal sealed class RouteMessage : OverlayMessage
{
    /// <summary>Identifies this hop at the sender, echoed in the <see cref="RouteAckMessage"/>.</summary>
    public ulong HopId { get; init; }

    /// <summary>The key whose root the message is for.</summary>
    public NodeKey Key { get; init; }

    /// <summary>Hops taken so far (0 when sent by the origin).</summary>
    public int Hops { get; init; }

    public RouteKind Kind { get; init; }

    /// <summary>Which application protocol handles the payload on delivery.</summary>
    public ushort Channel { get; init; }

    /// <summary>The node that started the route.</summary>
    public NodeHandle Origin { get; init; }

    public ReadOnlyMemory<byte> Payload { get; init; }

    public override MessageType Type => MessageType.Route;

    /// <summary>A copy for the next hop.</summary>
    public RouteMessage NextHop(NodeHandle sender, ulong hopId) => new()
    {
        Sender = sender,
        HopId = hopId,
        Key = Key,
        Hops = Hops + 1,
        Kind = Kind,
        Channel = Channel,
        Origin = Origin,
        Payload = Payload,
    };
}

/// <summary>Acknowledges one hop of a <see cref="RouteMessage"/>.</summary>
internal sealed class RouteAckMessage : OverlayMessage
{
    public ulong HopId { get; init; }

    public override MessageType Type => MessageType.RouteAck;
}

/// <summary>State sent to a joining node by each node on its join route: routing-table rows, and from the root its
/// leaf set.</summary>
internal sealed class JoinStateMessage : OverlayMessage
{
    /// <summary>Whether the sender is the root of the joining node's key (the last node on the route).</summary>
    public bool IsRoot { get; init; }

    public required NodeHandle[] Nodes { get; init; }

    public override MessageType Type => MessageType.JoinState;
}

/// <summary>Asks for one routing-table row, to fill a hole left by a dead node.</summary>
internal sealed class RowRequestMessage : OverlayMessage
{
    public int Row { get; init; }

    public override MessageType Type => MessageType.RowRequest;
}

/// <summary>Answer to a <see cref="RowRequestMessage"/>.</summary>
internal sealed class RowReplyMessage : OverlayMessage
{
    public int Row { get; init; }

    public required NodeHandle[] Nodes { get; init; }

    public override MessageType Type => MessageType.RowReply;
}

/// <summary>Graceful leave: the sender is going away; here is its leaf set to repair from.</summary>
internal sealed class LeaveMessage : OverlayMessage
{
    public required NodeHandle[] LeafSet { get; init; }

    public override MessageType Type => MessageType.Leave;
}

/// <summary>An application message sent straight to one node, acknowledged like a hop.</summary>
internal sealed class DirectMessage : OverlayMessage
{
    /// <summary>Identifies the send at the sender, echoed in the <see cref="RouteAckMessage"/>.</summary>
    public ulong HopId { get; init; }

    /// <summary>Which application protocol handles the payload.</summary>
    public ushort Channel { get; init; }

    public ReadOnlyMemory<byte> Payload { get; init; }

    public override MessageType Type => MessageType.Direct;

    public DirectMessage WithHopId(ulong hopId) => new() { Sender = Sender, HopId = hopId, Channel = Channel, Payload = Payload };
}
