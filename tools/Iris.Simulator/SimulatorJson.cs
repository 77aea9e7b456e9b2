using System.Text.Json.Serialization;

namespace Iris.Simulator;

/// <summary>Lookup results of one phase, as printed in the JSON line.</summary>
internal sealed record LookupSummary(double Delivered, double Correct, double MeanHops, int P99Hops, int MaxHops);

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
    double Seconds);

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

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PastryResult))]
[JsonSerializable(typeof(ScribeResult))]
internal sealed partial class SimulatorJson : JsonSerializerContext;
