namespace Iris.Chaos;

/// <summary>One kill: when (seconds into the load), which silo, and when its replacement became active.</summary>
internal sealed class KillRecord(double atSeconds, string silo)
{
    public double AtSeconds { get; } = atSeconds;

    public string Silo { get; } = silo;

    public string? Replacement { get; set; }

    public double? ReplacementActiveSeconds { get; set; }
}
