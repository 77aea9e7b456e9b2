namespace Iris.Cli.Bench;

/// <summary>How results are written.</summary>
internal enum BenchFormat
{
    /// <summary>Lines for a person.</summary>
    Text,

    /// <summary>One JSON object.</summary>
    Json,

    /// <summary>A header line and one row of comma-separated values.</summary>
    Csv,
}

/// <summary>One benchmark run: what to send where, by how many callers, for how long.</summary>
/// <param name="Pattern">What is sent.</param>
/// <param name="Target">The cluster (request, broadcast, tunnel) or topic (publish).</param>
/// <param name="Clients">Callers sending at once, each waiting for its message's round trip before the next.</param>
/// <param name="Size">Bytes of each message.</param>
/// <param name="Duration">How long results are measured.</param>
/// <param name="Warmup">How long messages are sent before measuring starts (not counted).</param>
/// <param name="Timeout">How long one round trip may take before it counts as an error.</param>
/// <param name="Format">How results are written.</param>
internal sealed record BenchSettings(BenchPattern Pattern, string Target, int Clients, int Size, TimeSpan Duration, TimeSpan Warmup, TimeSpan Timeout, BenchFormat Format);
