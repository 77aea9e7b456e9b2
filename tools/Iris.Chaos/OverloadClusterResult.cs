namespace Iris.Chaos;

/// <summary>What the overload callers' process saw: the outcomes by cluster, and the calls its Orleans client made to
/// other processes by method and outcome.</summary>
internal sealed record OverloadCallerResult(IReadOnlyList<OverloadClusterResult> Clusters, SortedDictionary<string, long> Calls);

/// <summary>What the callers of one overloaded cluster saw, sent by the overload callers' process to the runner (a JSON
/// line) and reported under <c>overload.clusters</c>. Seconds count from the start of the overload phase.</summary>
internal sealed record OverloadClusterResult
{
    public string Cluster { get; init; } = "";

    public double HandlerMs { get; init; }

    /// <summary>Requests per second sent, whatever became of the earlier ones.</summary>
    public double OfferedPerSecond { get; init; }

    /// <summary>Requests per second the members can complete at most (slots over handler time, summed).</summary>
    public double CapacityPerSecond { get; init; }

    public long Requests { get; init; }

    public long Succeeded { get; init; }

    /// <summary><c>IrisOverloadedException</c> and <c>IrisTimeoutException</c>, by type.</summary>
    public SortedDictionary<string, long> OverloadedTyped { get; init; } = [];

    /// <summary>Other Iris exceptions, by type.</summary>
    public SortedDictionary<string, long> OtherTyped { get; init; } = [];

    /// <summary>Exceptions that are not Iris's, by type.</summary>
    public SortedDictionary<string, long> Untyped { get; init; } = [];

    public long Unanswered { get; init; }

    public long WrongReplies { get; init; }

    public SortedDictionary<string, long> UnansweredLateOutcomes { get; init; } = [];

    public IReadOnlyList<int> SucceededPerSecond { get; init; } = [];

    /// <summary>Requests that ended in <c>IrisOverloadedException</c> or <c>IrisTimeoutException</c>, per second.</summary>
    public IReadOnlyList<int> RefusedPerSecond { get; init; } = [];

    public LatencySummary? SucceededMs { get; init; }

    public LatencySummary? OverloadedMs { get; init; }

    public LatencySummary? TimedOutMs { get; init; }
}

/// <summary>The median, 99th percentile and largest of some durations, in milliseconds; null when there are none.</summary>
internal sealed record LatencySummary(double P50, double P99, double Max)
{
    public static LatencySummary? Of(IEnumerable<double> milliseconds)
    {
        var sorted = milliseconds.Order().ToArray();
        return sorted.Length == 0
            ? null
            : new LatencySummary(Round(At(sorted, 0.50)), Round(At(sorted, 0.99)), Round(sorted[^1]));
    }

    private static double At(double[] sorted, double quantile) => sorted[Math.Min(sorted.Length - 1, (int)(quantile * sorted.Length))];

    private static double Round(double value) => Math.Round(value, 1);
}
