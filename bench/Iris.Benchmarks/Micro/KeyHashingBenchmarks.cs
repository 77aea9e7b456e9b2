using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Iris.Overlay;
using Iris.Placement;
using Iris.Protocol;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// From a name to its ring key: <see cref="NodeKey.FromName"/> (UTF-8, SHA-256, first 128 bits), the rendezvous key
/// of a cluster's split (<see cref="Audience.RendezvousKey"/>, a string: the grain key) and its ring key
/// (<see cref="RendezvousPlacement.KeyOf"/>). The baseline is SHA-256 of the name's UTF-8 bytes alone, encoded
/// beforehand: what hashing the name cannot avoid.
/// </summary>
[MemoryDiagnoser]
public class KeyHashingBenchmarks
{
    private readonly Audience _audience = Audience.Cluster("orders-eu-west");
    private string _grainKey = null!;
    private byte[] _utf8 = null!;
    private int _split;

    [GlobalSetup]
    public void Setup()
    {
        _grainKey = _audience.RendezvousKey(2);
        _utf8 = Encoding.UTF8.GetBytes(_grainKey);
    }

    [Benchmark(Baseline = true, Description = "SHA-256 of the bytes (baseline)")]
    public byte Sha256()
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(_utf8, hash);
        return hash[0];
    }

    [Benchmark(Description = "NodeKey.FromName")]
    public NodeKey FromName() => NodeKey.FromName(_grainKey);

    [Benchmark(Description = "RendezvousPlacement.KeyOf")]
    public NodeKey KeyOf() => RendezvousPlacement.KeyOf(_grainKey);

    [Benchmark(Description = "Audience.RendezvousKey")]
    public string RendezvousKey() => _audience.RendezvousKey(_split++ & 3);

    [Benchmark(Description = "Audience.RendezvousKeys")]
    public string[] RendezvousKeys() => _audience.RendezvousKeys();

    [Benchmark(Description = "KeyOf(RendezvousKey)")]
    public NodeKey RendezvousRingKey() => RendezvousPlacement.KeyOf(_audience.RendezvousKey(_split++ & 3));
}
