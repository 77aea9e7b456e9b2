using System.Text.Json.Serialization;

namespace Iris.Simulator;

/// <summary>Lookup results of one phase, as printed in the JSON line. <c>MessagesPerLookup</c>: lookup hops and their
/// acknowledgements sent, over lookups; <c>OtherMessages</c>: every other message sent meanwhile (maintenance).</summary>
internal sealed record LookupSummary(double Delivered, double Correct, double MeanHops, int P99Hops, int MaxHops, double MessagesPerLookup, long OtherMessages);

/// <summary>The JSON line of the <c>pastry</c> command.</summary>
internal sealed record PastryResult(
    int Nodes,
    int Lookups,
    double FailFraction,
    int Seed,
    LookupSummary Before,
    LookupSummary After,
    double? StabiliseSimulatedSeconds,
    double? RepairSimulatedSeconds,
    long Messages,
    IReadOnlyDictionary<string, long> Counters,
    double Seconds)
{
    /// <summary>Managed heap after a full collection once the ring was stable, less the heap before the simulation
    /// was built, over the nodes (<c>GC.GetTotalMemory(true)</c>).</summary>
    public long MemoryBytesPerNode { get; init; }
}

/// <summary>Scribe results of one phase.</summary>
internal sealed record ScribePhase(
    double MulticastDelivery,
    long MulticastDuplicates,
    double AnycastDelivered,
    double AnycastShareTvd,
    double MeanTreeDepth,
    int MaxChildren,
    double RootLoadMaxOverMean);

/// <summary>The JSON line of the <c>scribe</c> command.</summary>
internal sealed record ScribeResult(
    int Nodes,
    int Groups,
    int Members,
    int Messages,
    double FailFraction,
    int Seed,
    int Splits,
    ScribePhase Before,
    ScribePhase After,
    double? TreesSimulatedSeconds,
    double? RepairSimulatedSeconds,
    double Seconds);

/// <summary>One size of the <c>series</c> command. <c>MessagesPerLookup</c>: lookup hops and their acknowledgements
/// over lookups; <c>OtherMessagesDuringLookups</c>: maintenance sent while the lookups ran; <c>MemoryBytesPerNode</c>:
/// managed heap after a full collection once stable, less the heap before, over nodes; <c>BuildMessages</c>: every
/// message sent while joining and stabilising; <c>JoinBatch</c>: nodes joined per 2 ms step.</summary>
internal sealed record SeriesPoint(
    int Nodes,
    int Lookups,
    int JoinBatch,
    double Delivered,
    double Correct,
    double MeanHops,
    int P99Hops,
    double ExpectedHops,
    double MessagesPerLookup,
    long OtherMessagesDuringLookups,
    long MemoryBytesPerNode,
    long BuildMessages,
    double? StabiliseSimulatedSeconds,
    double JoinSeconds,
    double Seconds);

/// <summary>The JSON line of the <c>series</c> command.</summary>
internal sealed record SeriesResult(int Seed, int Lookups, IReadOnlyList<SeriesPoint> Points, double Seconds);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PastryResult))]
[JsonSerializable(typeof(ScribeResult))]
[JsonSerializable(typeof(SeriesResult))]
internal sealed partial class SimulatorJson : JsonSerializerContext;
