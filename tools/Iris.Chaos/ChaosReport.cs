using System.Text.Json;
using System.Text.Json.Serialization;

namespace Iris.Chaos;

/// <summary>The run's result, printed as one JSON object (the last line of standard output with <c>--json</c>). The
/// first fields are the headline figures; README.md says what each means.</summary>
internal sealed record ChaosReport
{
    private static readonly JsonSerializerOptions Compact = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly JsonSerializerOptions Indented = new(Compact) { WriteIndented = true };

    public long Requests { get; init; }

    public long Succeeded { get; init; }

    public SortedDictionary<string, long> FailedTyped { get; init; } = [];

    public long Unanswered { get; init; }

    public long ExecutedTwice { get; init; }

    public long TunnelMessagesLost { get; init; }

    public long TunnelMessagesReordered { get; init; }

    public long TunnelsFailedWithError { get; init; }

    public long BroadcastDuplicates { get; init; }

    public double RecoverySeconds { get; init; }

    public double MaxSiloMemoryMb { get; init; }

    // Details.
    public int Silos { get; init; }

    public int Seconds { get; init; }

    public int KillEvery { get; init; }

    public int Seed { get; init; }

    public SortedDictionary<string, long> FailedUntyped { get; init; } = [];

    public long WrongReplies { get; init; }

    public SortedDictionary<string, long> UnansweredLateOutcomes { get; init; } = [];

    public long SucceededNotExecuted { get; init; }

    public long ExecutionsRecorded { get; init; }

    public long BroadcastsSent { get; init; }

    public long BroadcastsAccepted { get; init; }

    public SortedDictionary<string, long> BroadcastsFailed { get; init; } = [];

    public long BroadcastsUnanswered { get; init; }

    public long BroadcastDeliveriesMissing { get; init; }

    public IReadOnlyList<string> BroadcastMissingSamples { get; init; } = [];

    public SortedDictionary<string, long> BroadcastsUnansweredLateOutcomes { get; init; } = [];

    public long TunnelsOpened { get; init; }

    public long TunnelsClosedCleanly { get; init; }

    public SortedDictionary<string, long> TunnelFailures { get; init; } = [];

    public SortedDictionary<string, long> TunnelOpenFailures { get; init; } = [];

    public long TunnelMessagesSent { get; init; }

    public long TunnelMessagesDuplicated { get; init; }

    public long TunnelMessagesCorrupt { get; init; }

    public long TunnelMessagesReorderedBeforeFailure { get; init; }

    public SortedDictionary<string, long> SlowCalls { get; init; } = [];

    public IReadOnlyList<string> SlowCallSamples { get; init; } = [];

    public IReadOnlyList<KillSummary> Kills { get; init; } = [];

    public IReadOnlyList<int> SucceededPerSecond { get; init; } = [];

    public IReadOnlyList<int> FailedPerSecond { get; init; } = [];

    public IReadOnlyList<string> FailureSamples { get; init; } = [];

    public double StartupSeconds { get; init; }

    public double WallSeconds { get; init; }

    public string? Directory { get; init; }

    public string ToJson(bool indented) => JsonSerializer.Serialize(this, indented ? Indented : Compact);
}

/// <summary>One kill in the report.</summary>
internal sealed record KillSummary(
    double AtSeconds,
    string Silo,
    string? Replacement,
    double? ReplacementActiveSeconds,
    double BaselinePerSecond,
    int LowestPerSecond,
    double RecoverySeconds,
    bool Recovered);
