using System.Buffers;
using BenchmarkDotNet.Attributes;
using Iris.Overlay;
using Iris.Overlay.Transport;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// The overlay's binary codec (<see cref="MessageCodec"/>) on a typical routed message (an application route with TCP
/// addresses for sender and origin) as a TCP link runs it: the size check and encoding into the link's reused
/// buffer; decoding with the link's address cache. The baseline copies the encoded frame into the same buffer: the
/// bytes a message has to be moved through anyway.
/// </summary>
[MemoryDiagnoser]
public class MessageCodecBenchmarks
{
    private readonly ArrayBufferWriter<byte> _scratch = new(256);
    private readonly AddressCache _addresses = new();
    private RouteMessage _message = null!;
    private byte[] _frame = null!;

    [Params(64, 1024)]
    public int Payload { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        var payload = new byte[Payload];
        random.NextBytes(payload);
        _message = new RouteMessage
        {
            Sender = new NodeHandle(NodeKey.Random(random), new NodeAddress("tcp://10.0.0.12:11111")),
            HopId = 0x1234_5678_9abc,
            Key = NodeKey.FromName("cluster/orders-eu-west#2"),
            Hops = 2,
            Kind = RouteKind.Application,
            Channel = 3,
            Origin = new NodeHandle(NodeKey.Random(random), new NodeAddress("tcp://10.0.0.14:11111")),
            Payload = payload,
        };
        _frame = MessageCodec.Encode(_message);
        _ = MessageCodec.Read(_frame, _addresses);
    }

    [Benchmark(Baseline = true, Description = "copy of the encoded bytes (baseline)")]
    public int Copy()
    {
        _scratch.Clear();
        _scratch.Write(_frame);
        return _scratch.WrittenCount;
    }

    [Benchmark(Description = "Refusal + Write")]
    public int Encode()
    {
        _scratch.Clear();
        if (MessageCodec.Refusal(_message, 16 * 1024 * 1024) is not null)
        {
            return -1;
        }

        MessageCodec.Write(_scratch, _message);
        return _scratch.WrittenCount;
    }

    [Benchmark(Description = "Read")]
    public ulong Decode() => ((RouteMessage)MessageCodec.Read(_frame, _addresses)).HopId;
}
