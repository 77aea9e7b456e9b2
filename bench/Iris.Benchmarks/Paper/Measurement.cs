using System.Text.Json.Serialization;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// One system's figures for one workload at one payload size, in the shape of <c>bench/results/latest.json</c>:
/// messages (requests, deliveries) per second, payload megabytes per second, latency percentiles in milliseconds, and
/// the CPU time one message costs across every process of the system (load generator included), in microseconds.
/// </summary>
public sealed record Measurement(
    [property: JsonPropertyName("perSec")] double PerSec,
    [property: JsonPropertyName("mbPerSec")] double MbPerSec,
    [property: JsonPropertyName("p50Ms")] double P50Ms,
    [property: JsonPropertyName("p99Ms")] double P99Ms,
    [property: JsonPropertyName("cpuUsPerMsg")] double CpuUsPerMsg);
