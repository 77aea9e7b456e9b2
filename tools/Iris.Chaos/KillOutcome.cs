namespace Iris.Chaos;

/// <summary>Throughput around one kill: the baseline (successes per second before it), the lowest second after it,
/// and the seconds until it was back to 90 % of the baseline.</summary>
internal sealed record KillOutcome(double Baseline, int Lowest, double Seconds, bool Recovered);
