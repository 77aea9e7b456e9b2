using CsCheck;
using Iris.Overlay;
using Iris.Overlay.Transport;
using Iris.Tests.Overlay;
using Xunit.Abstractions;

namespace Iris.Tests.Fuzz;

/// <summary>Hostile input for <see cref="MessageCodec.Read"/>: it returns a message or throws
/// <see cref="OverlayProtocolException"/>, nothing else, and never allocates for a length the input does not hold.</summary>
public class MessageCodecFuzzTests(ITestOutputHelper output)
{
    private const string Target = "MessageCodec.Read";

    private static readonly Gen<Mutated<OverlayMessage>> Mutated = Mutations.Of(Generators.Message, MessageCodec.Encode, PayloadLength);

    [Fact]
    public Task Mutated_and_random_messages_decode_or_fail_with_a_protocol_error() =>
        Fuzzing.RunAsync(output, Target, Gen.Select(Mutated, Mutations.Random(300), Gen.Int[0, 7]), sample =>
        {
            var (mutated, random, pick) = sample;
            var bytes = pick == 0 ? random : mutated.Bytes;
            var decoded = Decode(bytes);
            if (pick != 0 && mutated.Unchanged && decoded is null)
            {
                throw new FuzzFailure("An unchanged valid message was refused.");
            }
        });

    [Fact]
    public void A_payload_length_of_0xFFFFFFFF_is_refused_before_allocating()
    {
        var message = new DirectMessage { Sender = new NodeHandle(new NodeKey(1), new NodeAddress("tcp://a")), HopId = 1, Channel = 2, Payload = new byte[3] };
        var bytes = MessageCodec.Encode(message);
        foreach (var huge in new uint[] { 0xFFFFFFFF, MessageCodec.MaxPayload, 0x7FFFFFFF })
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(PayloadLength(message, bytes)[0]), huge);
            Assert.Null(Decode(bytes));
        }
    }

    /// <summary>Reads <paramref name="bytes"/> and checks the property; null when they were refused.</summary>
    private static OverlayMessage? Decode(byte[] bytes)
    {
        OverlayMessage? decoded = null;
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            decoded = MessageCodec.Read(bytes);
        }
        catch (OverlayProtocolException)
        {
        }

        Fuzzing.CheckAllocation(Target, GC.GetAllocatedBytesForCurrentThread() - before, bytes.Length);
        if (decoded is not null)
        {
            var encoding = MessageCodec.Encode(decoded);
            if (!MessageCodec.Encode(MessageCodec.Read(encoding)).AsSpan().SequenceEqual(encoding))
            {
                throw new FuzzFailure($"{decoded.GetType().Name} decoded from {Convert.ToHexString(bytes)} does not survive encoding again.");
            }
        }

        return decoded;
    }

    /// <summary>Where the payload's length sits in a routed or direct message (the payload comes last).</summary>
    private static int[] PayloadLength(OverlayMessage message, byte[] encoding) => message switch
    {
        RouteMessage route => [encoding.Length - route.Payload.Length - 4],
        DirectMessage direct => [encoding.Length - direct.Payload.Length - 4],
        _ => [],
    };
}
