using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Transport;

namespace Iris.Tests.Overlay;

public class MessageCodecTests
{
    private static readonly Gen<OverlayMessage> Message = Generators.Message;

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
