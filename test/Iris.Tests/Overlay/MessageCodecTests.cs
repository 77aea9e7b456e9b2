using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Transport;

namespace Iris.Tests.Overlay;

public class MessageCodecTests
{
    private static readonly Gen<NodeKey> Key = Generators.Key;

    private static readonly Gen<NodeHandle> Handle =
        Gen.Select(Key, Gen.String[Gen.Char.AlphaNumeric, 1, 40], (key, host) => new NodeHandle(key, new NodeAddress("tcp://" + host)));

    private static readonly Gen<OverlayMessage> Message = Gen.OneOf<OverlayMessage>(
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

    [Fact]
    public void Every_message_survives_encoding_and_decoding() =>
        Message.Sample(message =>
        {
            var bytes = MessageCodec.Encode(message);
            var decoded = MessageCodec.Read(bytes);
            return decoded.GetType() == message.GetType() && MessageCodec.Encode(decoded).AsSpan().SequenceEqual(bytes);
        });

    [Fact]
    public void Every_truncation_of_a_valid_message_is_rejected() =>
        Message.Sample(message =>
        {
            var bytes = MessageCodec.Encode(message);
            for (var length = 0; length < bytes.Length; length++)
            {
                try
                {
                    MessageCodec.Read(bytes.AsSpan(0, length));
                    return false;
                }
                catch (OverlayProtocolException)
                {
                }
            }

            return true;
        }, iter: 50);

    [Fact]
    public void Random_bytes_are_either_a_message_or_a_protocol_error_never_a_crash() =>
        Gen.Byte.Array[0, 200].Sample(bytes =>
        {
            try
            {
                MessageCodec.Read(bytes);
            }
            catch (OverlayProtocolException)
            {
            }
        });

    [Fact]
    public void Unknown_types_trailing_bytes_and_oversized_lists_are_named_in_the_error()
    {
        var sender = new NodeHandle(new NodeKey(1), new NodeAddress("tcp://a"));
        var unknown = MessageCodec.Encode(new RouteAckMessage { Sender = sender, HopId = 1 });
        unknown[0] = 200;
        Assert.Contains("Unknown overlay message type 200", Assert.Throws<OverlayProtocolException>(() => MessageCodec.Read(unknown)).Message);

        var trailing = MessageCodec.Encode(new RouteAckMessage { Sender = sender, HopId = 1 }).Append((byte)0).ToArray();
        Assert.Contains("trailing", Assert.Throws<OverlayProtocolException>(() => MessageCodec.Read(trailing)).Message);

        var leave = MessageCodec.Encode(new LeaveMessage { Sender = sender, LeafSet = [] });
        leave[^2] = 0xff;
        leave[^1] = 0xff;
        Assert.Contains("limit", Assert.Throws<OverlayProtocolException>(() => MessageCodec.Read(leave)).Message);

        var row = MessageCodec.Encode(new RowRequestMessage { Sender = sender, Row = 3 });
        row[^1] = 40;
        Assert.Contains("out of range", Assert.Throws<OverlayProtocolException>(() => MessageCodec.Read(row)).Message);
    }
}
