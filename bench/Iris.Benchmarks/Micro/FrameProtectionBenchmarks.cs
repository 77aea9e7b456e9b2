using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Iris.Overlay.Security;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// AES-256-GCM framing of a connection (<see cref="FrameProtector"/>): sealing a frame, and sealing then opening it on
/// the other side's protector, with the 4-byte length header as associated data and the frame counter as nonce, as
/// <c>TcpLink</c> and the Orleans connection middleware run them. The baselines are a plain copy of the same bytes
/// (one for a seal, two for a seal and an open): what framing without encryption costs.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class FrameProtectionBenchmarks
{
    private readonly byte[] _header = [0, 0, 0, 0];
    private FrameProtector _send = null!;
    private FrameProtector _receive = null!;
    private byte[] _plaintext = null!;
    private byte[] _sealed = null!;
    private byte[] _opened = null!;

    [Params(64, 1024, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        _send = new FrameProtector([.. key], rekeyAfterFrames: 1L << 32);
        _receive = new FrameProtector([.. key], rekeyAfterFrames: 1L << 32);
        _plaintext = RandomNumberGenerator.GetBytes(Size);
        _sealed = new byte[Size + FrameProtector.TagSize];
        _opened = new byte[Size];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _send.Dispose();
        _receive.Dispose();
    }

    [Benchmark(Baseline = true, Description = "copy (baseline)")]
    [BenchmarkCategory("seal")]
    public void Copy() => _plaintext.CopyTo(_sealed, 0);

    [Benchmark(Description = "FrameProtector.Seal")]
    [BenchmarkCategory("seal")]
    public void Seal() => _send.Seal(_header, _plaintext, _sealed);

    [Benchmark(Baseline = true, Description = "copy there and back (baseline)")]
    [BenchmarkCategory("seal+open")]
    public void CopyTwice()
    {
        _plaintext.CopyTo(_sealed, 0);
        _sealed.AsSpan(0, Size).CopyTo(_opened);
    }

    [Benchmark(Description = "Seal, then Open")]
    [BenchmarkCategory("seal+open")]
    public void SealOpen()
    {
        _send.Seal(_header, _plaintext, _sealed);
        _receive.Open(_header, _sealed, _opened);
    }
}
