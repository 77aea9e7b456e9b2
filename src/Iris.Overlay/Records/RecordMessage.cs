using System.Buffers.Binary;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>Wire tag of a record message (payload of the overlay's records channel). Never renumber.</summary>
internal enum RecordMessageType : byte
{
    Request = 1,
    Reply = 2,
    SyncQuery = 3,
    SyncReply = 4,
    Replicate = 5,
    ReplicateAck = 6,
}

/// <summary>A committed value of a record: its data, its version (1 for the first write), and the request that wrote
/// it, so a retried write is recognised after the root changed.</summary>
public sealed record RecordValue(byte[] Data, long Version)
{
    /// <summary>The writer's node and request number.</summary>
    internal (NodeKey Node, ulong Request) Writer { get; init; }
}

/// <summary>
/// One record message. Layout: type, record key, request id (origin node key, sequence), then per type: Request: kind
/// (0 read, 1 compare-and-swap), expected version, origin address, data; Reply: success flag, then a value or none;
/// SyncQuery: nothing; SyncReply and Replicate: a value or none; ReplicateAck: version. A value is its version, its
/// writer (node key, sequence) and its data.
/// </summary>
internal sealed record RecordMessage(RecordMessageType Type, NodeKey Key, NodeKey RequestNode, ulong RequestId)
{
    public bool IsWrite { get; init; }

    public long ExpectedVersion { get; init; }

    public NodeAddress OriginAddress { get; init; }

    public byte[] Data { get; init; } = [];

    public bool Success { get; init; }

    public RecordValue? Value { get; init; }

    public long Version { get; init; }

    public byte[] Encode()
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write((byte)Type);
        WriteKey(writer, Key);
        WriteKey(writer, RequestNode);
        writer.Write(BinaryPrimitives.ReverseEndianness(RequestId));
        switch (Type)
        {
            case RecordMessageType.Request:
                writer.Write(IsWrite);
                writer.Write(ExpectedVersion);
                writer.Write(OriginAddress.Value ?? string.Empty);
                writer.Write(Data.Length);
                writer.Write(Data);
                break;
            case RecordMessageType.Reply:
                writer.Write(Success);
                WriteValue(writer, Value);
                break;
            case RecordMessageType.SyncReply or RecordMessageType.Replicate:
                WriteValue(writer, Value);
                break;
            case RecordMessageType.ReplicateAck:
                writer.Write(Version);
                break;
        }

        writer.Flush();
        return stream.ToArray();
    }

    public static RecordMessage Decode(ReadOnlyMemory<byte> payload)
    {
        try
        {
            using var stream = new MemoryStream(payload.ToArray(), writable: false);
            using var reader = new BinaryReader(stream);
            var type = (RecordMessageType)reader.ReadByte();
            var message = new RecordMessage(type, ReadKey(reader), ReadKey(reader), BinaryPrimitives.ReverseEndianness(reader.ReadUInt64()));
            message = type switch
            {
                RecordMessageType.Request => message with
                {
                    IsWrite = reader.ReadBoolean(),
                    ExpectedVersion = reader.ReadInt64(),
                    OriginAddress = new NodeAddress(reader.ReadString()),
                    Data = reader.ReadBytes(CheckedLength(reader.ReadInt32())),
                },
                RecordMessageType.Reply => message with { Success = reader.ReadBoolean(), Value = ReadValue(reader) },
                RecordMessageType.SyncReply or RecordMessageType.Replicate => message with { Value = ReadValue(reader) },
                RecordMessageType.ReplicateAck => message with { Version = reader.ReadInt64() },
                RecordMessageType.SyncQuery => message,
                _ => throw new OverlayProtocolException($"Unknown record message type {(byte)type}."),
            };
            if (stream.Position != stream.Length)
            {
                throw new OverlayProtocolException($"Record message has {stream.Length - stream.Position} trailing bytes.");
            }

            return message;
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or IOException)
        {
            throw new OverlayProtocolException("Record message truncated or malformed.", e);
        }
    }

    private static int CheckedLength(int length) =>
        length is >= 0 and <= MessageCodec.MaxPayload ? length : throw new OverlayProtocolException($"Record data of {length} bytes is out of range.");

    private static void WriteKey(BinaryWriter writer, NodeKey key)
    {
        Span<byte> bytes = stackalloc byte[NodeKey.Size];
        key.Write(bytes);
        writer.Write(bytes);
    }

    private static NodeKey ReadKey(BinaryReader reader) => NodeKey.Read(reader.ReadBytes(NodeKey.Size) is { Length: NodeKey.Size } b ? b : throw new EndOfStreamException());

    private static void WriteValue(BinaryWriter writer, RecordValue? value)
    {
        writer.Write(value is not null);
        if (value is not null)
        {
            writer.Write(value.Version);
            WriteKey(writer, value.Writer.Node);
            writer.Write(value.Writer.Request);
            writer.Write(value.Data.Length);
            writer.Write(value.Data);
        }
    }

    private static RecordValue? ReadValue(BinaryReader reader)
    {
        if (!reader.ReadBoolean())
        {
            return null;
        }

        var version = reader.ReadInt64();
        var writer = (ReadKey(reader), reader.ReadUInt64());
        var data = reader.ReadBytes(CheckedLength(reader.ReadInt32()));
        return new RecordValue(data, version) { Writer = writer };
    }
}
