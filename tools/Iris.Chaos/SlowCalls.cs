using System.Collections.Concurrent;

namespace Iris.Chaos;

/// <summary>An Orleans call filter on the runner's client that notes every grain or observer call taking longer than
/// 2 s: which interface, method and target, when it started (seconds into the load), how long it took and how it
/// ended. It shows where requests wait after a kill (a rendezvous, a member host, which silo's grain).</summary>
internal sealed class SlowCalls : IOutgoingGrainCallFilter
{
    private const int Kept = 40;
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _samples = new();

    /// <summary>Set when the load starts; calls before are not noted.</summary>
    public RunClock? Clock { get; set; }

    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        var clock = Clock;
        var started = clock?.Seconds ?? 0;
        var outcome = "ok";
        try
        {
            await context.Invoke().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = e.GetType().Name;
            throw;
        }
        finally
        {
            if (clock is not null && clock.Seconds - started > Slow.TotalSeconds)
            {
                var call = $"{context.InterfaceName}.{context.MethodName} -> {outcome}";
                _counts.AddOrUpdate(call, 1, (_, n) => n + 1);
                if (_samples.Count < Kept)
                {
                    _samples.Enqueue($"{started:F1}s +{clock.Seconds - started:F1}s {context.InterfaceName}.{context.MethodName} {context.TargetId} -> {outcome}");
                }
            }
        }
    }

    public SortedDictionary<string, long> Counts() => new(_counts, StringComparer.Ordinal);

    public IReadOnlyList<string> Samples() => [.. _samples];
}
