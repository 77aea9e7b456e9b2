namespace Iris.Calls;

/// <summary>
/// The time a call has left, measured against this process's monotonic clock from the moment it arrived. Time crosses
/// processes only as time remaining (<see cref="Remaining"/>), so clocks that disagree across machines never matter.
/// </summary>
internal readonly struct CallBudget
{
    private readonly TimeProvider _time;
    private readonly long _started;

    private CallBudget(TimeProvider time, TimeSpan total)
    {
        _time = time;
        _started = time.GetTimestamp();
        Total = total;
    }

    /// <summary>The time the call was given here.</summary>
    public TimeSpan Total { get; }

    /// <summary>Time left, never negative.</summary>
    public TimeSpan Remaining
    {
        get
        {
            var left = Total - _time.GetElapsedTime(_started);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    public bool IsExpired => Remaining == TimeSpan.Zero;

    public TimeProvider Time => _time;

    public static CallBudget Start(TimeProvider time, TimeSpan total) => new(time, total);
}
