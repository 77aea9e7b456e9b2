using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Iris.Overlay.Transport;

/// <summary>
/// Binary encoding of <see cref="OverlayMessage"/>s, one message per frame (framing belongs to the transport).
/// Layout: type (1 byte), sender handle, then the type's fields. A handle is its key (16 bytes, big-endian) and its
/// address (1-byte length, UTF-8). Integers are big-endian. Decoding checks every length against the frame and the
/// limits below and throws <see cref="OverlayProtocolException"/> on anything malformed.
/// </summary>
internal static class MessageCodec
{
    /// <summary>The most handles a single message may carry (a full routing row plus a leaf set, with room).</summary>
    public const int MaxHandles = 512;

    /// <summary>The largest routed payload, in bytes.</summary>
    public const int MaxPayload = 16 * 1024 * 1024;

    /// <summary>The most a message adds to its payload: type, sender, hop id, key, hops, kind, channel, origin and the
    /// payload's length, with addresses of the longest allowed (577 bytes), rounded up.</summary>
    public const int MaxEnvelope = 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The exact size <see cref="Write"/> gives <paramref name="message"/>, computed without encoding it.</summary>
    public static long EncodedSize(OverlayMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        long size = 1 + HandleSize(message.Sender);
        return size + message switch
        {
            LivenessMessage live => 4 + 4 + 1 + 1 + (live.LeafSet is null ? 0 : HandlesSize(live.LeafSet)),
            RouteMessage route => 8 + NodeKey.Size + 1 + 1 + 2 + HandleSize(route.Origin) + 4 + (long)route.Payload.Length,
            DirectMessage direct => 8 + 2 + 4 + (long)direct.Payload.Length,
            RouteAckMessage => 8,
            JoinStateMessage join => 1 + HandlesSize(join.Nodes),
            RowRequestMessage => 1,
            RowReplyMessage reply => 1 + HandlesSize(reply.Nodes),
            LeaveMessage leave => HandlesSize(leave.LeafSet),
            _ => throw new ArgumentException($"No encoding for {message.GetType().Name}.", nameof(message)),
        };
    }

    /// <summary>Why <paramref name="message"/> cannot be encoded within <paramref name="maxSize"/> bytes, or null
    /// when it can.</summary>
    public static string? Refusal(OverlayMessage message, int maxSize)
    {
        var payload = message switch
        {
            RouteMessage route => route.Payload.Length,
            DirectMessage direct => direct.Payload.Length,
            _ => 0,
        };
        var handles = message switch
        {
            LivenessMessage live => live.LeafSet?.Length ?? 0,
            JoinStateMessage join => join.Nodes.Length,
            RowReplyMessage reply => reply.Nodes.Length,
            LeaveMessage leave => leave.LeafSet.Length,
            _ => 0,
        };
        if (payload > MaxPayload)
        {
            return $"its payload of {payload} bytes exceeds the overlay's limit of {MaxPayload}";
        }

        if (handles > MaxHandles)
        {
            return $"it lists {handles} node handles, more than the {MaxHandles} allowed";
        }

        var size = EncodedSize(message);
        return size > maxSize ? $"it encodes to {size} bytes, more than the frame limit of {maxSize}" : null;
    }

    private static int HandleSize(NodeHandle handle) => NodeKey.Size + 1 + Encoding.UTF8.GetByteCount(handle.Address.Value ?? string.Empty);

    private static long HandlesSize(NodeHandle[] handles)
    {
        long size = 2;
        foreach (var handle in handles)
        {
            size += HandleSize(handle);
        }

        return size;
    }

    public static byte[] Encode(OverlayMessage message)
    {
        var writer = new ArrayBufferWriter<byte>(128);
        Write(writer, message);
        return writer.WrittenSpan.ToArray();
    }

    public static void Write(IBufferWriter<byte> output, OverlayMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var w = new Writer(output);
        w.Byte((byte)message.Type);
        w.Handle(message.Sender);
        switch (message)
        {
            case LivenessMessage live:
                w.UInt32(live.LeafVersion);
                w.UInt32(live.SeenVersion);
                w.Byte(live is PingMessage { WantLeafSet: true } ? (byte)1 : (byte)0);
                w.Byte(live.LeafSet is null ? (byte)0 : (byte)1);
                if (live.LeafSet is not null)
                {
                    w.Handles(live.LeafSet);
                }

                break;
            case RouteMessage route:
                w.UInt64(route.HopId);
                w.Key(route.Key);
                w.Byte(checked((byte)route.Hops));
                w.Byte((byte)route.Kind);
                w.UInt16(route.Channel);
                w.Handle(route.Origin);
                w.Payload(route.Payload);
                break;
            case DirectMessage direct:
                w.UInt64(direct.HopId);
                w.UInt16(direct.Channel);
                w.Payload(direct.Payload);
                break;
            case RouteAckMessage ack:
                w.UInt64(ack.HopId);
                break;
            case JoinStateMessage join:
                w.Byte(join.IsRoot ? (byte)1 : (byte)0);
                w.Handles(join.Nodes);
                break;
            case RowRequestMessage request:
                w.Byte((byte)request.Row);
                break;
            case RowReplyMessage reply:
                w.Byte((byte)reply.Row);
                w.Handles(reply.Nodes);
                break;
            case LeaveMessage leave:
                w.Handles(leave.LeafSet);
                break;
            default:
                throw new ArgumentException($"No encoding for {message.GetType().Name}.", nameof(message));
        }
    }

    /// <summary>Decodes one message; <paramref name="addresses"/>, when given, lets a connection's reader reuse the
    /// addresses it decoded before (nearly every message on a connection names the same sender).</summary>
    public static OverlayMessage Read(ReadOnlySpan<byte> frame, AddressCache? addresses = null)
    {
        var r = new Reader(frame, addresses);
        var type = (MessageType)r.Byte();
        var sender = r.Handle();
        OverlayMessage message;
        switch (type)
        {
            case MessageType.Ping:
            case MessageType.Pong:
                var leafVersion = r.UInt32();
                var seenVersion = r.UInt32();
                var want = r.Bool();
                var leafSet = r.Bool() ? r.Handles() : null;
                message = type == MessageType.Ping
                    ? new PingMessage { Sender = sender, LeafVersion = leafVersion, SeenVersion = seenVersion, WantLeafSet = want, LeafSet = leafSet }
                    : new PongMessage { Sender = sender, LeafVersion = leafVersion, SeenVersion = seenVersion, LeafSet = leafSet };
                break;
            case MessageType.Route:
                var hopId = r.UInt64();
                var key = r.Key();
                var hops = r.Byte();
                var kind = (RouteKind)r.Byte();
                if (kind is not (RouteKind.Join or RouteKind.Application))
                {
                    throw new OverlayProtocolException($"Unknown route kind {(byte)kind} from {sender}.");
                }

                var channel = r.UInt16();
                var origin = r.Handle();
                message = new RouteMessage
                {
                    Sender = sender, HopId = hopId, Key = key, Hops = hops, Kind = kind, Channel = channel, Origin = origin,
                    Payload = r.Payload(),
                };
                break;
            case MessageType.Direct:
                var directHop = r.UInt64();
                var directChannel = r.UInt16();
                message = new DirectMessage { Sender = sender, HopId = directHop, Channel = directChannel, Payload = r.Payload() };
                break;
            case MessageType.RouteAck:
                message = new RouteAckMessage { Sender = sender, HopId = r.UInt64() };
                break;
            case MessageType.JoinState:
                var isRoot = r.Bool();
                message = new JoinStateMessage { Sender = sender, IsRoot = isRoot, Nodes = r.Handles() };
                break;
            case MessageType.RowRequest:
                message = new RowRequestMessage { Sender = sender, Row = r.Row() };
                break;
            case MessageType.RowReply:
                var row = r.Row();
                message = new RowReplyMessage { Sender = sender, Row = row, Nodes = r.Handles() };
                break;
            case MessageType.Leave:
                message = new LeaveMessage { Sender = sender, LeafSet = r.Handles() };
                break;
            default:
                throw new OverlayProtocolException($"Unknown overlay message type {(byte)type}.");
        }

        r.End(type);
        return message;
    }

    private ref struct Writer(IBufferWriter<byte> output)
    {
        private readonly IBufferWriter<byte> _output = output;

        public readonly void Byte(byte value)
        {
            _output.GetSpan(1)[0] = value;
            _output.Advance(1);
        }

        public readonly void UInt16(ushort value)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_output.GetSpan(2), value);
            _output.Advance(2);
        }

        public readonly void UInt32(uint value)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_output.GetSpan(4), value);
            _output.Advance(4);
        }

        public readonly void UInt64(ulong value)
        {
            BinaryPrimitives.WriteUInt64BigEndian(_output.GetSpan(8), value);
            _output.Advance(8);
        }

        public readonly void Key(NodeKey key)
        {
            key.Write(_output.GetSpan(NodeKey.Size));
            _output.Advance(NodeKey.Size);
        }

        public readonly void Bytes(ReadOnlySpan<byte> bytes)
        {
            _output.Write(bytes);
        }

        public readonly void Payload(ReadOnlyMemory<byte> payload)
        {
            if (payload.Length > MaxPayload)
            {
                throw new ArgumentException($"An overlay payload is at most {MaxPayload} bytes; this one has {payload.Length}.", nameof(payload));
            }

            UInt32((uint)payload.Length);
            Bytes(payload.Span);
        }

        public readonly void Handle(NodeHandle handle)
        {
            Key(handle.Key);
            var address = handle.Address.Value ?? string.Empty;
            var span = _output.GetSpan(1 + NodeAddress.MaxLength);
            var length = Encoding.UTF8.GetBytes(address, span[1..]);
            span[0] = (byte)length;
            _output.Advance(1 + length);
        }

        public readonly void Handles(NodeHandle[] handles)
        {
            if (handles.Length > MaxHandles)
            {
                throw new ArgumentException($"A message carries at most {MaxHandles} node handles; got {handles.Length}.", nameof(handles));
            }

            UInt16((ushort)handles.Length);
            foreach (var handle in handles)
            {
                Handle(handle);
            }
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> frame, AddressCache? addresses)
    {
        private ReadOnlySpan<byte> _rest = frame;

        private ReadOnlySpan<byte> Take(int count)
        {
            if (_rest.Length < count)
            {
                throw new OverlayProtocolException($"Overlay message truncated: needed {count} more bytes, {_rest.Length} left.");
            }

            var taken = _rest[..count];
            _rest = _rest[count..];
            return taken;
        }

        public byte Byte() => Take(1)[0];

        public bool Bool() => Byte() switch
        {
            0 => false,
            1 => true,
            var other => throw new OverlayProtocolException($"Overlay message has {other} where a flag (0 or 1) belongs."),
        };

        public ushort UInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

        public uint UInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

        public ulong UInt64() => BinaryPrimitives.ReadUInt64BigEndian(Take(8));

        public NodeKey Key() => NodeKey.Read(Take(NodeKey.Size));

        public ReadOnlySpan<byte> Bytes(int count) => Take(count);

        public byte[] Payload()
        {
            var length = UInt32();
            if (length > MaxPayload)
            {
                throw new OverlayProtocolException($"Overlay payload of {length} bytes exceeds the limit of {MaxPayload}.");
            }

            return Bytes((int)length).ToArray();
        }

        public int Row()
        {
            var row = Byte();
            return row < NodeKey.DigitCount
                ? row
                : throw new OverlayProtocolException($"Routing-table row {row} is out of range (0..{NodeKey.DigitCount - 1}).");
        }

        public NodeHandle Handle()
        {
            var key = Key();
            var length = Byte();
            if (length == 0)
            {
                throw new OverlayProtocolException("Overlay message carries a node handle with an empty address.");
            }

            var bytes = Take(length);
            if (addresses?.Find(bytes) is { } known)
            {
                return new NodeHandle(key, known);
            }

            string address;
            try
            {
                address = StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw new OverlayProtocolException("Overlay message carries a node address that is not valid UTF-8.", e);
            }

            var decoded = new NodeAddress(address);
            addresses?.Add(bytes, decoded);
            return new NodeHandle(key, decoded);
        }

        public NodeHandle[] Handles()
        {
            var count = UInt16();
            if (count > MaxHandles)
            {
                throw new OverlayProtocolException($"Overlay message lists {count} node handles; the limit is {MaxHandles}.");
            }

            var handles = new NodeHandle[count];
            for (var i = 0; i < handles.Length; i++)
            {
                handles[i] = Handle();
            }

            return handles;
        }

        public readonly void End(MessageType type)
        {
            if (!_rest.IsEmpty)
            {
                throw new OverlayProtocolException($"Overlay {type} message has {_rest.Length} unexpected trailing bytes.");
            }
        }
    }
}

/// <summary>The last few addresses one reader decoded, by their bytes: not thread-safe, one per connection.</summary>
internal sealed class AddressCache
{
    private const int Size = 4;
    private readonly (byte[] Bytes, NodeAddress Address)[] _entries = new (byte[], NodeAddress)[Size];
    private int _next;

    public NodeAddress? Find(ReadOnlySpan<byte> bytes)
    {
        foreach (var (known, address) in _entries)
        {
            if (known is not null && bytes.SequenceEqual(known))
            {
                return address;
            }
        }

        return null;
    }

    public void Add(ReadOnlySpan<byte> bytes, NodeAddress address)
    {
        _entries[_next] = (bytes.ToArray(), address);
        _next = (_next + 1) % Size;
    }
}
