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

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PastryResult))]
internal sealed partial class SimulatorJson : JsonSerializerContext;
