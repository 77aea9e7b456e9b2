using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Iris.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// A hand-over's batch of broadcast messages (256 of 16 B or 1 KiB, no trace parent) through Orleans' serializer, as
/// every hop writes and reads it: <see cref="DisseminatedCodec"/> against the codec Orleans generates for the same
/// fields (<see cref="GeneratedDisseminated"/>, the baseline), each written into a reused buffer and read back.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class DisseminatedCodecBenchmarks
{
    private const int Batch = 256;

    private readonly ServiceProvider _services = new ServiceCollection()
        .AddSerializer(builder => builder.AddAssembly(typeof(Disseminated).Assembly).AddAssembly(typeof(GeneratedDisseminated).Assembly))
        .BuildServiceProvider();

    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private Serializer<Disseminated[]> _iris = null!;
    private Serializer<GeneratedDisseminated[]> _generated = null!;
    private Disseminated[] _messages = null!;
    private GeneratedDisseminated[] _generatedMessages = null!;
    private byte[] _irisBytes = null!;
    private byte[] _generatedBytes = null!;

    [Params(16, 1024)]
    public int Payload { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _iris = _services.GetRequiredService<Serializer<Disseminated[]>>();
        _generated = _services.GetRequiredService<Serializer<GeneratedDisseminated[]>>();
        _messages = [.. Enumerable.Range(0, Batch).Select(_ => new Disseminated(Guid.NewGuid(), new byte[Payload]))];
        _generatedMessages = [.. _messages.Select(m => new GeneratedDisseminated(m.Id, m.Body))];
        _irisBytes = _iris.SerializeToArray(_messages);
        _generatedBytes = _generated.SerializeToArray(_generatedMessages);
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true, Description = "generated codec: write")]
    [BenchmarkCategory("write")]
    public int WriteGenerated()
    {
        _buffer.Clear();
        _generated.Serialize(_generatedMessages, _buffer);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "DisseminatedCodec: write")]
    [BenchmarkCategory("write")]
    public int WriteIris()
    {
        _buffer.Clear();
        _iris.Serialize(_messages, _buffer);
        return _buffer.WrittenCount;
    }

    [Benchmark(Baseline = true, Description = "generated codec: read")]
    [BenchmarkCategory("read")]
    public int ReadGenerated() => _generated.Deserialize(_generatedBytes)!.Length;

    [Benchmark(Description = "DisseminatedCodec: read")]
    [BenchmarkCategory("read")]
    public int ReadIris() => _iris.Deserialize(_irisBytes)!.Length;
}

/// <summary>The fields of <see cref="Disseminated"/> with the codec Orleans generates: the baseline.</summary>
[GenerateSerializer]
[Immutable]
public readonly record struct GeneratedDisseminated([property: Id(0)] Guid Id, [property: Id(1)] byte[] Body)
{
    [Id(2)]
    public string? TraceParent { get; init; }
}
