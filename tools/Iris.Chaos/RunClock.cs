namespace Iris.Chaos;

/// <summary>Seconds since the load started, on the monotonic clock; per-second buckets are whole seconds of it.</summary>
internal sealed class RunClock(TimeProvider time)
{
    private readonly long _start = time.GetTimestamp();

    public double Seconds => time.GetElapsedTime(_start).TotalSeconds;

    public int Second => (int)Seconds;

    public Task DelayUntilAsync(double seconds, CancellationToken cancellationToken)
    {
        var remaining = seconds - Seconds;
        return remaining > 0 ? Task.Delay(TimeSpan.FromSeconds(remaining), time, cancellationToken) : Task.CompletedTask;
    }
}
