using System.Buffers.Binary;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>Wire tag of a record message (payload of the overlay's records channel). Never renumber.</summary>
internal enum RecordMessageType : byte
{
    /// <summary>An operation, routed to the record's root.</summary>
    Request = 1,

    /// <summary>The root's answer to a request.</summary>
    Reply = 2,

    // 3 to 6 were the unreplicated store's sync and copy messages: retired, never reused.

    /// <summary>Paxos phase 1: a proposer asks an acceptor to promise a ballot.</summary>
    Prepare = 7,

    /// <summary>Paxos phase 2: a proposer asks an acceptor to accept a value at a ballot.</summary>
    Accept = 8,

    /// <summary>A new configuration's acceptor receives its first value.</summary>
    Seed = 9,

    /// <summary>A root asks a neighbour what it knows of a record (its acceptor state, or the configuration it knows).</summary>
    Query = 10,

    /// <summary>An acceptor's answer to <see cref="Prepare"/>, <see cref="Accept"/>, <see cref="Seed"/> or
    /// <see cref="Query"/>.</summary>
    AcceptorReply = 11,

    /// <summary>The root's answer to a request it could not complete: a majority of the replicas did not answer.</summary>
    Failure = 12,
}

/// <summary>How an acceptor answered.</summary>
internal enum AcceptorStatus : byte
{
    /// <summary>Promised or accepted (or seeded; or, to a query, it has state).</summary>
    Ok = 1,

    /// <summary>It promised a higher ballot, carried in the reply.</summary>
    Rejected = 2,

    /// <summary>It is in a later epoch, or was seeded with another configuration of this epoch; its state is in the
    /// reply.</summary>
    Stale = 3,

    /// <summary>It holds nothing for this epoch (not seeded yet, or it restarted and is another incarnation).</summary>
    NotSeeded = 4,
}

/// <summary>Why a root gave up on a request.</summary>
internal enum RecordFailure : byte
{
    /// <summary>No majority of the record's replicas answered before the deadline.</summary>
    NoMajority = 1,

    /// <summary>Rounds kept being pre-empted until the deadline.</summary>
    Contended = 2,
}

/// <summary>A committed value of a record: its data, its version (1 for the first write), and the request that wrote
/// it, so a retried write is recognised after the root changed.</summary>
public sealed record RecordValue(byte[] Data, long Version)
{
    /// <summary>The writer's node and request number.</summary>
    internal (NodeKey Node, ulong Request) Writer { get; init; }
}

/// <summary>
/// One record message. Layout: type, record key, request id (origin node key, sequence; for acceptor messages the
/// proposer's key and its round number), then per type: Request: kind (0 read, 1 compare-and-swap), expected version,
/// origin address, data, write id (node key, request), the latest configuration the requester knows or none; Reply:
/// success flag, a value or none (version, writer, data), the root's configuration or none; Failure: reason, the same;
/// Prepare: epoch, ballot, the acceptor's incarnation; Accept: the same and a register; Seed: the acceptor's
/// incarnation, a configuration and a register; Query: nothing; AcceptorReply: the phase answered, status, the
/// acceptor's incarnation, promised and accepted ballots, then a configuration or none, a register or none, and whether the
/// acceptor's node is leaving the ring.
/// A configuration is its epoch and members (key, incarnation, address); a register its version, data, recent
/// writes (node, request, version) and next configuration or none. Counts and lengths are checked on decoding.
/// </summary>
internal sealed record RecordMessage(RecordMessageType Type, NodeKey Key, NodeKey RequestNode, ulong RequestId)
{
    /// <summary>Most acceptors a configuration may list on the wire.</summary>
    public const int MaxMembers = 64;

    public long Epoch { get; init; }

    public Ballot Ballot { get; init; }

    /// <summary>In a request to an acceptor: the incarnation the proposer believes it has; in its reply: its own.</summary>
    public ulong Incarnation { get; init; }

    public RecordMessageType Phase { get; init; }

    public AcceptorStatus Status { get; init; }

    public Ballot Promised { get; init; }

    public Ballot Accepted { get; init; }

    public RecordConfiguration? Configuration { get; init; }

    public Register? Register { get; init; }

    public RecordFailure Reason { get; init; }

    public bool IsWrite { get; init; }

    public long ExpectedVersion { get; init; }

    public NodeAddress OriginAddress { get; init; }

    public byte[] Data { get; init; } = [];

    /// <summary>In a request: the write's id, by which a retry is recognised.</summary>
    public WriteId WriteId { get; init; }

    public bool Success { get; init; }

    /// <summary>In an acceptor's reply: its node is handing its records over to leave the ring, so no root may make it
    /// an acceptor again.</summary>
    public bool Leaving { get; init; }

    public RecordValue? Value { get; init; }

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
                WriteKey(writer, WriteId.Node);
                writer.Write(WriteId.Request);
                WriteOptionalConfiguration(writer, Configuration);
                break;
            case RecordMessageType.Reply:
                writer.Write(Success);
                WriteValue(writer, Value);
                WriteOptionalConfiguration(writer, Configuration);
                break;
            case RecordMessageType.Failure:
                writer.Write((byte)Reason);
                WriteOptionalConfiguration(writer, Configuration);
                break;
            case RecordMessageType.Prepare:
                writer.Write(Epoch);
                WriteBallot(writer, Ballot);
                writer.Write(Incarnation);
                break;
            case RecordMessageType.Accept:
                writer.Write(Epoch);
                WriteBallot(writer, Ballot);
                writer.Write(Incarnation);
                WriteRegister(writer, Register ?? throw new InvalidOperationException("An accept carries a register."));
                break;
            case RecordMessageType.Seed:
                writer.Write(Incarnation);
                WriteConfiguration(writer, Configuration ?? throw new InvalidOperationException("A seed carries a configuration."));
                WriteRegister(writer, Register ?? throw new InvalidOperationException("A seed carries a register."));
                break;
            case RecordMessageType.AcceptorReply:
                writer.Write((byte)Phase);
                writer.Write((byte)Status);
                writer.Write(Incarnation);
                WriteBallot(writer, Promised);
                WriteBallot(writer, Accepted);
                WriteOptionalConfiguration(writer, Configuration);
                writer.Write(Register is not null);
                if (Register is not null)
                {
                    WriteRegister(writer, Register);
                }

                writer.Write(Leaving);
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
                    Data = ReadData(reader),
                    WriteId = new WriteId(ReadKey(reader), reader.ReadUInt64()),
                    Configuration = ReadOptionalConfiguration(reader),
                },
                RecordMessageType.Reply => message with { Success = reader.ReadBoolean(), Value = ReadValue(reader), Configuration = ReadOptionalConfiguration(reader) },
                RecordMessageType.Failure => message with { Reason = ReadEnum<RecordFailure>(reader.ReadByte(), 1, 2), Configuration = ReadOptionalConfiguration(reader) },
                RecordMessageType.Prepare => message with { Epoch = ReadEpoch(reader), Ballot = ReadBallot(reader), Incarnation = reader.ReadUInt64() },
                RecordMessageType.Accept => message with
                {
                    Epoch = ReadEpoch(reader), Ballot = ReadBallot(reader), Incarnation = reader.ReadUInt64(), Register = ReadRegister(reader),
                },
                RecordMessageType.Seed => message with { Incarnation = reader.ReadUInt64(), Configuration = ReadConfiguration(reader), Register = ReadRegister(reader) },
                RecordMessageType.Query => message,
                RecordMessageType.AcceptorReply => message with
                {
                    Phase = ReadPhase(reader.ReadByte()),
                    Status = ReadEnum<AcceptorStatus>(reader.ReadByte(), 1, 4),
                    Incarnation = reader.ReadUInt64(),
                    Promised = ReadBallot(reader),
                    Accepted = ReadBallot(reader),
                    Configuration = ReadOptionalConfiguration(reader),
                    Register = reader.ReadBoolean() ? ReadRegister(reader) : null,
                    Leaving = reader.ReadBoolean(),
                },
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

    private static T ReadEnum<T>(byte value, byte min, byte max)
        where T : struct, Enum =>
        value >= min && value <= max ? (T)(object)value : throw new OverlayProtocolException($"Record {typeof(T).Name} {value} is unknown.");

    private static RecordMessageType ReadPhase(byte value) =>
        (RecordMessageType)value is RecordMessageType.Prepare or RecordMessageType.Accept or RecordMessageType.Seed or RecordMessageType.Query
            ? (RecordMessageType)value
            : throw new OverlayProtocolException($"Record reply to unknown phase {value}.");

    private static long ReadEpoch(BinaryReader reader)
    {
        var epoch = reader.ReadInt64();
        return epoch >= 1 ? epoch : throw new OverlayProtocolException($"Record epoch {epoch} is out of range.");
    }

    private static int CheckedCount(int count, int max, string what) =>
        count >= 0 && count <= max ? count : throw new OverlayProtocolException($"Record {what} count {count} is out of range.");

    private static void WriteBallot(BinaryWriter writer, Ballot ballot)
    {
        writer.Write(ballot.Counter);
        WriteKey(writer, ballot.Node);
    }

    private static Ballot ReadBallot(BinaryReader reader)
    {
        var counter = reader.ReadInt64();
        return counter >= 0 ? new Ballot(counter, ReadKey(reader)) : throw new OverlayProtocolException($"Record ballot {counter} is negative.");
    }

    private static void WriteConfiguration(BinaryWriter writer, RecordConfiguration configuration)
    {
        writer.Write(configuration.Epoch);
        writer.Write(configuration.Members.Length);
        foreach (var member in configuration.Members)
        {
            WriteKey(writer, member.Key);
            writer.Write(member.Incarnation);
            writer.Write(member.Address.Value ?? string.Empty);
        }
    }

    private static void WriteOptionalConfiguration(BinaryWriter writer, RecordConfiguration? configuration)
    {
        writer.Write(configuration is not null);
        if (configuration is not null)
        {
            WriteConfiguration(writer, configuration);
        }
    }

    private static RecordConfiguration? ReadOptionalConfiguration(BinaryReader reader) => reader.ReadBoolean() ? ReadConfiguration(reader) : null;

    private static RecordConfiguration ReadConfiguration(BinaryReader reader)
    {
        var epoch = ReadEpoch(reader);
        var members = new RecordMember[CheckedCount(reader.ReadInt32(), MaxMembers, "member")];
        if (members.Length == 0)
        {
            throw new OverlayProtocolException("Record configuration has no members.");
        }

        for (var i = 0; i < members.Length; i++)
        {
            members[i] = new RecordMember(ReadKey(reader), reader.ReadUInt64(), new NodeAddress(reader.ReadString()));
        }

        return new RecordConfiguration(epoch, members);
    }

    private static void WriteRegister(BinaryWriter writer, Register register)
    {
        writer.Write(register.Version);
        writer.Write(register.Data.Length);
        writer.Write(register.Data);
        writer.Write(register.Recent.Length);
        foreach (var (id, version) in register.Recent)
        {
            WriteKey(writer, id.Node);
            writer.Write(id.Request);
            writer.Write(version);
        }

        writer.Write(register.Next is not null);
        if (register.Next is not null)
        {
            WriteConfiguration(writer, register.Next);
        }
    }

    private static Register ReadRegister(BinaryReader reader)
    {
        var version = reader.ReadInt64();
        if (version < 0)
        {
            throw new OverlayProtocolException($"Record version {version} is negative.");
        }

        var data = ReadData(reader);
        var recent = new (WriteId, long)[CheckedCount(reader.ReadInt32(), Register.RecentWrites, "recent write")];
        for (var i = 0; i < recent.Length; i++)
        {
            recent[i] = (new WriteId(ReadKey(reader), reader.ReadUInt64()), reader.ReadInt64());
        }

        var next = reader.ReadBoolean() ? ReadConfiguration(reader) : null;
        return new Register(version, data, recent, next);
    }

    private static byte[] ReadData(BinaryReader reader)
    {
        var length = CheckedLength(reader.ReadInt32());
        return reader.ReadBytes(length) is { } data && data.Length == length ? data : throw new EndOfStreamException();
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
        var data = ReadData(reader);
        return new RecordValue(data, version) { Writer = writer };
    }
}
