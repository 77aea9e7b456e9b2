using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Transport;

namespace Iris.Tests.Overlay;

/// <summary>CsCheck generators shared by the overlay's property tests.</summary>
internal static class Generators
{
    /// <summary>Uniformly random keys.</summary>
    public static readonly Gen<NodeKey> Key =
        Gen.Select(Gen.ULong, Gen.ULong, (hi, lo) => new NodeKey(new UInt128(hi, lo)));

    /// <summary>Handles with short alphanumeric TCP-like addresses.</summary>
    public static readonly Gen<NodeHandle> Handle =
        Gen.Select(Key, Gen.String[Gen.Char.AlphaNumeric, 1, 40], (key, host) => new NodeHandle(key, new NodeAddress("tcp://" + host)));

    /// <summary>Every kind of overlay message, with lists and payloads of varied sizes.</summary>
    public static readonly Gen<OverlayMessage> Message = Gen.OneOf<OverlayMessage>(
        Gen.Select(Handle, Gen.UInt, Gen.UInt, Gen.Bool, Handle.Array[0, 20].Null(), (s, v, seen, want, leaf) =>
            new PingMessage { Sender = s, LeafVersion = v, SeenVersion = seen, WantLeafSet = want, LeafSet = leaf }),
        Gen.Select(Handle, Gen.UInt, Gen.UInt, Handle.Array[0, 20].Null(), (s, v, seen, leaf) =>
            new PongMessage { Sender = s, LeafVersion = v, SeenVersion = seen, LeafSet = leaf }),
        Gen.Select(Handle, Gen.ULong, Key, Gen.Int[0, 255], Gen.Bool, Gen.UShort, Handle, Gen.Byte.Array[0, 300],
            (s, hop, key, hops, join, channel, origin, payload) => new RouteMessage
            {
                Sender = s, HopId = hop, Key = key, Hops = hops, Kind = join ? RouteKind.Join : RouteKind.Application,
                Channel = channel, Origin = origin, Payload = payload,
            }),
        Gen.Select(Handle, Gen.ULong, (s, hop) => new RouteAckMessage { Sender = s, HopId = hop }),
        Gen.Select(Handle, Gen.Bool, Handle.Array[0, 60], (s, root, nodes) => new JoinStateMessage { Sender = s, IsRoot = root, Nodes = nodes }),
        Gen.Select(Handle, Gen.Int[0, 31], (s, row) => new RowRequestMessage { Sender = s, Row = row }),
        Gen.Select(Handle, Gen.Int[0, 31], Handle.Array[0, 15], (s, row, nodes) => new RowReplyMessage { Sender = s, Row = row, Nodes = nodes }),
        Gen.Select(Handle, Handle.Array[0, 16], (s, leaf) => new LeaveMessage { Sender = s, LeafSet = leaf }),
        Gen.Select(Handle, Gen.ULong, Gen.UShort, Gen.Byte.Array[0, 300], (s, hop, channel, payload) =>
            new DirectMessage { Sender = s, HopId = hop, Channel = channel, Payload = payload }));
}
