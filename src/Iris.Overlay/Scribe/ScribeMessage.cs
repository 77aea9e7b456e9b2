using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Scribe;

/// <summary>Wire tag of a Scribe message (the payload of the overlay's Scribe channel). Never renumber.</summary>
internal enum ScribeMessageType : byte
{
    Join = 1,
    JoinAck = 2,
    Leave = 3,
    ParentBeat = 4,
    ChildReport = 5,
    Reject = 6,
    Multicast = 7,
    Data = 8,
    Anycast = 9,
    NoMembers = 10,
}

/// <summary>Identifies one multicast or anycast: the sending node and its sequence number.</summary>
public readonly record struct ScribeMessageId(NodeKey Origin, ulong Sequence)
{
    /// <inheritdoc />
    public override string ToString() => $"{Origin.ToShortString()}/{Sequence}";
}

/// <summary>
/// One Scribe message. A flat shape keeps the codec small: each type uses the fields it needs. Layout: type, group
/// key, then per type: Join nothing; JoinAck and ParentBeat the path (count, keys) and ParentBeat the capacity above;
/// ChildReport the subtree capacity; Multicast, Data, Anycast and NoMembers the message id, and all but NoMembers the
/// tree hops taken, the origin handle and the payload.
/// </summary>
internal sealed record ScribeMessage(ScribeMessageType Type, NodeKey Group)
{
    public const int MaxPath = 128;

    public NodeKey[] Path { get; init; } = [];

    public double Capacity { get; init; }

    public ScribeMessageId Id { get; init; }

    public NodeHandle Origin { get; init; }

    public ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>Tree hops an anycast has taken, so a stale capacity cannot bounce it around for ever.</summary>
    public int Hops { get; init; }

    public byte[] Encode()
    {
        var w = new ArrayBufferWriter<byte>(64 + Payload.Length);
        Span<byte> scratch = stackalloc byte[NodeKey.Size];
        w.Write([(byte)Type]);
        Group.Write(scratch);
        w.Write(scratch);
        switch (Type)
        {
            case ScribeMessageType.JoinAck or ScribeMessageType.ParentBeat:
                WriteUInt16(w, (ushort)Path.Length);
                foreach (var key in Path)
                {
                    key.Write(scratch);
                    w.Write(scratch);
                }

                if (Type == ScribeMessageType.ParentBeat)
                {
                    WriteDouble(w, Capacity);
                }

                break;
            case ScribeMessageType.ChildReport:
                WriteDouble(w, Capacity);
                break;
            case ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast or ScribeMessageType.NoMembers:
                Id.Origin.Write(scratch);
                w.Write(scratch);
                BinaryPrimitives.WriteUInt64BigEndian(w.GetSpan(8), Id.Sequence);
                w.Advance(8);
                if (Type != ScribeMessageType.NoMembers)
                {
                    w.Write([(byte)Math.Min(Hops, 255)]);
                    Origin.Key.Write(scratch);
                    w.Write(scratch);
                    var address = Encoding.UTF8.GetBytes(Origin.Address.Value ?? string.Empty);
                    w.Write([(byte)address.Length]);
                    w.Write(address);
                    w.Write(Payload.Span);
                }

                break;
        }

        return w.WrittenSpan.ToArray();
    }

    public static ScribeMessage Decode(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var type = (ScribeMessageType)bytes[0];
            var group = NodeKey.Read(bytes.Slice(1, NodeKey.Size));
            var rest = bytes[(1 + NodeKey.Size)..];
            switch (type)
            {
                case ScribeMessageType.Join or ScribeMessageType.Leave or ScribeMessageType.Reject:
                    return new ScribeMessage(type, group);
                case ScribeMessageType.JoinAck or ScribeMessageType.ParentBeat:
                    int count = BinaryPrimitives.ReadUInt16BigEndian(rest);
                    if (count > MaxPath)
                    {
                        throw new OverlayProtocolException($"Scribe path of {count} nodes exceeds the limit of {MaxPath}.");
                    }

                    var path = new NodeKey[count];
                    for (var i = 0; i < count; i++)
                    {
                        path[i] = NodeKey.Read(rest.Slice(2 + (i * NodeKey.Size), NodeKey.Size));
                    }

                    var after = rest[(2 + (count * NodeKey.Size))..];
                    return new ScribeMessage(type, group)
                    {
                        Path = path,
                        Capacity = type == ScribeMessageType.ParentBeat ? BinaryPrimitives.ReadDoubleBigEndian(after) : 0,
                    };
                case ScribeMessageType.ChildReport:
                    return new ScribeMessage(type, group) { Capacity = BinaryPrimitives.ReadDoubleBigEndian(rest) };
                case ScribeMessageType.Multicast or ScribeMessageType.Data or ScribeMessageType.Anycast or ScribeMessageType.NoMembers:
                    var id = new ScribeMessageId(NodeKey.Read(rest[..NodeKey.Size]), BinaryPrimitives.ReadUInt64BigEndian(rest.Slice(NodeKey.Size, 8)));
                    if (type == ScribeMessageType.NoMembers)
                    {
                        return new ScribeMessage(type, group) { Id = id };
                    }

                    int hops = rest[NodeKey.Size + 8];
                    rest = rest[(NodeKey.Size + 9)..];
                    var originKey = NodeKey.Read(rest[..NodeKey.Size]);
                    int length = rest[NodeKey.Size];
                    var address = Encoding.UTF8.GetString(rest.Slice(NodeKey.Size + 1, length));
                    return new ScribeMessage(type, group)
                    {
                        Id = id,
                        Hops = hops,
                        Origin = new NodeHandle(originKey, new NodeAddress(address)),
                        Payload = rest[(NodeKey.Size + 1 + length)..].ToArray(),
                    };
                default:
                    throw new OverlayProtocolException($"Unknown Scribe message type {(byte)type}.");
            }
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or ArgumentException)
        {
            throw new OverlayProtocolException("Scribe message truncated or malformed.", e);
        }
    }

    private static void WriteUInt16(ArrayBufferWriter<byte> w, ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(w.GetSpan(2), value);
        w.Advance(2);
    }

    private static void WriteDouble(ArrayBufferWriter<byte> w, double value)
    {
        BinaryPrimitives.WriteDoubleBigEndian(w.GetSpan(8), value);
        w.Advance(8);
    }
}
