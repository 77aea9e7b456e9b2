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

    /// <summary>With <c>--overload</c>: the overload callers' requests that ended in <c>IrisOverloadedException</c> or
    /// <c>IrisTimeoutException</c>, by type.</summary>
    public SortedDictionary<string, long>? OverloadedTyped { get; init; }

    /// <summary>With <c>--overload</c>: the overload callers' requests with neither reply nor exception within timeout
    /// plus 2 s.</summary>
    public long? OverloadUnanswered { get; init; }

    /// <summary>With <c>--overload</c>: the healthy cluster's successes per second during the overload over those
    /// before it (<see cref="OverloadPhases"/>).</summary>
    public double? HealthyThroughputRatio { get; init; }

    // Details.
    public int Silos { get; init; }

    public int Seconds { get; init; }

    /// <summary>Null in an overload run, which kills nothing.</summary>
    public int? KillEvery { get; init; }

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

    public OverloadSummary? Overload { get; init; }

    public IReadOnlyList<int> SucceededPerSecond { get; init; } = [];

    public IReadOnlyList<int> FailedPerSecond { get; init; } = [];

    public IReadOnlyList<string> FailureSamples { get; init; } = [];

    public double StartupSeconds { get; init; }

    public double WallSeconds { get; init; }

    public string? Directory { get; init; }

    /// <summary>
    /// The promises of docs/reliability.md this run saw broken, each named with its count: a request unanswered,
    /// answered wrong, run twice or reported done without running; a tunnel message lost or reordered on a tunnel that
    /// did not fail; a broadcast delivered twice; an overload caller left without an answer. Missing broadcast
    /// deliveries are reported but not counted here: a rendezvous whose silo is killed right after accepting a message
    /// loses it for the members it had not reached (a known limit), and throughput recovery depends on the machine.
    /// </summary>
    public List<string> BrokenPromises()
    {
        var broken = new List<string>();
        void Check(long count, string what)
        {
            if (count > 0)
            {
                broken.Add($"{what} {count}");
            }
        }

        Check(Unanswered, "unanswered");
        Check(WrongReplies, "wrongReplies");
        Check(ExecutedTwice, "executedTwice");
        Check(SucceededNotExecuted, "succeededNotExecuted");
        Check(TunnelMessagesLost, "tunnelMessagesLost");
        Check(TunnelMessagesReordered, "tunnelMessagesReordered");
        Check(BroadcastDuplicates, "broadcastDuplicates");
        Check(OverloadUnanswered ?? 0, "overloadUnanswered");
        return broken;
    }

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

/// <summary>The overload phase in the report: when it ran, the healthy cluster's throughput by phase, what the overload
/// callers saw (in all and by cluster), what the members' files say about their requests, and memory by phase.</summary>
internal sealed record OverloadSummary
{
    /// <summary>Each overloaded cluster was offered this many times its members' capacity.</summary>
    public double Factor { get; init; }

    /// <summary>When the phase before the overload started, after the warm-up (seconds since the load started).</summary>
    public int BeforeFrom { get; init; }

    public int OverloadFrom { get; init; }

    public int OverloadTo { get; init; }

    public int SettleSeconds { get; init; }

    public required HealthyThroughput Healthy { get; init; }

    public long Requests { get; init; }

    public long Succeeded { get; init; }

    /// <summary>Iris exceptions other than overloaded and timeout, by type.</summary>
    public SortedDictionary<string, long> OtherTyped { get; init; } = [];

    public SortedDictionary<string, long> Untyped { get; init; } = [];

    public long WrongReplies { get; init; }

    public long ExecutionsRecorded { get; init; }

    public long ExecutedTwice { get; init; }

    public long OverloadedButExecuted { get; init; }

    public IReadOnlyList<OverloadClusterResult> Clusters { get; init; } = [];

    /// <summary>The overload callers' Orleans calls to other processes, by interface, method and outcome.</summary>
    public SortedDictionary<string, long> Calls { get; init; } = [];

    /// <summary>Calls to member hosts per request of the overload callers: 1 when the first member chosen answered;
    /// each member that refused adds one.</summary>
    public double MemberCallsPerRequest { get; init; }

    public required PhaseMemory SiloMemoryMb { get; init; }

    public required PhaseMemory MemberMemoryMb { get; init; }

    public IReadOnlyList<double> SiloMemoryMbPerSecond { get; init; } = [];

    /// <summary>Cores used on average in each phase, by role (<see cref="CpuAccount"/>).</summary>
    public PhaseCpu? CpuCores { get; init; }
}

/// <summary>Cores used in each phase of an overload run, by role.</summary>
internal sealed record PhaseCpu(SortedDictionary<string, double> Before, SortedDictionary<string, double> Overload, SortedDictionary<string, double> After);

/// <summary>The largest working set sampled in each phase of an overload run, in MiB.</summary>
internal sealed record PhaseMemory(double Before, double Overload, double After)
{
    public static PhaseMemory Of(MemorySampler sampler, OverloadPhases phases) =>
        new(sampler.MaxMb(phases.BeforeFrom, phases.OverloadFrom), sampler.MaxMb(phases.OverloadFrom, phases.OverloadTo), sampler.MaxMb(phases.OverloadTo, phases.End + 1));
}
