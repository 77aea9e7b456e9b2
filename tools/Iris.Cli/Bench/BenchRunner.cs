using System.Diagnostics;
using HdrHistogram;

namespace Iris.Cli.Bench;

/// <summary>
/// Runs a workload with <see cref="BenchSettings.Clients"/> callers, each sending its next message once the last one's
/// round trip completed (a closed loop), for the warm-up and then the measured duration. A round trip counts when it
/// completes inside the measured window; calls still under way when the window closes are cancelled and not counted.
/// Each caller records into its own histogram (microseconds), merged at the end.
/// </summary>
internal sealed class BenchRunner(IBenchWorkload workload, BenchSettings settings)
{
    /// <summary>The slowest latency the histograms hold; anything slower is recorded as this.</summary>
    private static readonly long MaxMicroseconds = (long)TimeSpan.FromMinutes(15).TotalMicroseconds;

    /// <summary>Pause after a failed call, so that a failing cluster is not hammered in a tight loop.</summary>
    private static readonly TimeSpan ErrorPause = TimeSpan.FromMilliseconds(20);

    private long _completed;
    private long _errors;
    private string? _lastError;
    private long _started;

    /// <summary>Round trips completed since the start, warm-up included (for the live display).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Failed round trips since the start, warm-up included.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Time since the callers started.</summary>
    public TimeSpan Elapsed => _started == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_started);

    public TimeSpan Total => settings.Warmup + settings.Duration;

    public async Task<BenchResult> RunAsync(CancellationToken cancellationToken)
    {
        var histograms = Enumerable.Range(0, settings.Clients).Select(_ => new LongHistogram(MaxMicroseconds, 3)).ToArray();
        var measuredCounts = new long[settings.Clients];
        var measuredErrors = new long[settings.Clients];
        _started = Stopwatch.GetTimestamp();
        var from = _started + (long)(settings.Warmup.TotalSeconds * Stopwatch.Frequency);
        var until = from + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        window.CancelAfter(Total);

        async Task CallAsync(int caller)
        {
            await Task.Yield();
            while (!window.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await workload.RoundTripAsync(caller, window.Token);
                    var end = Stopwatch.GetTimestamp();
                    Interlocked.Increment(ref _completed);
                    if (end >= from && end < until)
                    {
                        histograms[caller].RecordValue(Math.Min(MaxMicroseconds, (long)Stopwatch.GetElapsedTime(start, end).TotalMicroseconds));
                        measuredCounts[caller]++;
                    }
                }
                catch (Exception) when (window.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    Interlocked.Increment(ref _errors);
                    var end = Stopwatch.GetTimestamp();
                    if (end >= from && end < until)
                    {
                        measuredErrors[caller]++;
                    }

                    Volatile.Write(ref _lastError, $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                    try
                    {
                        await Task.Delay(ErrorPause, window.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, settings.Clients).Select(CallAsync));
        cancellationToken.ThrowIfCancellationRequested();

        var merged = new LongHistogram(MaxMicroseconds, 3);
        foreach (var histogram in histograms)
        {
            merged.Add(histogram);
        }

        return BenchResult.From(settings, settings.Duration.TotalSeconds, measuredCounts.Sum(), measuredErrors.Sum(), merged, workload.Measures, Volatile.Read(ref _lastError));
    }
}
