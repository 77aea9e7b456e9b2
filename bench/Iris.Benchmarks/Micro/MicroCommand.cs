using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace Iris.Benchmarks.Micro;

/// <summary>
/// <c>micro [BenchmarkDotNet arguments]</c>: the micro-benchmarks of the steady-state hot paths, each beside its
/// baseline, with the memory diagnoser. Without <c>--filter</c> all of them run; without <c>--job</c> a short job
/// (one launch, 3 warm-up and 5 measured iterations), enough for the ratios and the allocations on a shared machine.
/// </summary>
internal static class MicroCommand
{
    public static readonly Type[] Benchmarks =
    [
        typeof(MemberChoiceBenchmarks),
        typeof(KeyHashingBenchmarks),
        typeof(NextHopBenchmarks),
        typeof(MessageCodecBenchmarks),
        typeof(FrameProtectionBenchmarks),
        typeof(DisseminatedCodecBenchmarks),
    ];

    public static void Run(string[] args)
    {
        var config = DefaultConfig.Instance.AddDiagnoser(MemoryDiagnoser.Default);
        if (!args.Any(a => a is "--job" or "-j" || a.StartsWith("--job=", StringComparison.Ordinal)))
        {
            config = config.AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).AsDefault());
        }

        if (!args.Any(a => a is "--filter" or "-f" || a.StartsWith("--filter=", StringComparison.Ordinal)))
        {
            args = [.. args, "--filter", "*"];
        }

        BenchmarkSwitcher.FromTypes(Benchmarks).Run(args, config);
    }
}
