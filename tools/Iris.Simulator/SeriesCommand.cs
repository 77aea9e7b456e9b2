using System.Diagnostics;
using System.Text.Json;

namespace Iris.Simulator;

/// <summary>
/// The <c>series</c> mode: how the cost of a Pastry ring grows with its size. For each size, a fresh ring joins,
/// stabilises and routes a batch of lookups; the point records mean hops (against Pastry's log₁₆ N), messages per
/// lookup, managed heap per node and wall time. Written as a table, a JSON line, <c>series.json</c> and
/// <c>series.png</c>.
/// </summary>
internal static class SeriesCommand
{
    /// <summary>Nodes that join per 2 ms step are chosen so that joining takes at most this many steps (20 s of
    /// simulated time). Each node heartbeats its leaf set every second whatever happens, so with one node per step the
    /// heartbeats sent while N nodes join grow as N² (about 3·10⁸ messages for 100,000 nodes).</summary>
    public const int MaxJoinSteps = 10_000;

    internal static SeriesResult Run(int[] sizes, int lookups, int seed, string directory, TextWriter progress)
    {
        var wall = Stopwatch.StartNew();
        var points = new List<SeriesPoint>();
        foreach (var nodes in sizes)
        {
            var point = Measure(nodes, lookups, seed, progress);
            points.Add(point);
            progress.WriteLine(Row(point));
        }

        Directory.CreateDirectory(directory);
        var result = new SeriesResult(seed, lookups, points, wall.Elapsed.TotalSeconds);
        File.WriteAllText(Path.Combine(directory, "series.json"), JsonSerializer.Serialize(result, SimulatorJson.Default.SeriesResult) + Environment.NewLine);
        SeriesChart.Write(Path.Combine(directory, "series.png"), points);
        return result;
    }

    internal static SeriesPoint Measure(int nodes, int lookups, int seed, TextWriter progress)
    {
        var wall = Stopwatch.StartNew();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        using var sim = new PastrySimulation(new PastrySimulationOptions { Seed = seed, EncodeMessages = false });
        var batch = Math.Max(1, (nodes + MaxJoinSteps - 1) / MaxJoinSteps);
        progress.WriteLine($"{nodes} nodes: joining {batch} every 2 ms (seed {seed})...");
        var step = Math.Max(1, nodes / 10);
        sim.AddNodes(nodes, TimeSpan.FromMilliseconds(2), joined =>
        {
            if (joined % step == 0)
            {
                progress.WriteLine($"  {joined} joined, {wall.Elapsed.TotalSeconds:F1} s, {sim.Tally.Sent:N0} messages");
            }
        }, batch);

        var joinSeconds = wall.Elapsed.TotalSeconds;
        var stabilised = sim.Stabilise(TimeSpan.FromSeconds(120));
        progress.WriteLine(stabilised is { } s
            ? $"  stable after {s.TotalSeconds:F1} s of simulated time"
            : $"  not stable after 120 s of simulated time ({sim.WrongLeafSets()} wrong leaf sets); measuring anyway");
        var memoryPerNode = (GC.GetTotalMemory(forceFullCollection: true) - heapBefore) / nodes;
        var buildMessages = sim.Tally.Sent;
        progress.WriteLine($"  {memoryPerNode / 1024.0:F1} KiB per node; routing {lookups} lookups...");
        var stats = sim.Lookups(lookups);
        return new SeriesPoint(
            nodes,
            lookups,
            batch,
            Math.Round(stats.DeliveredFraction, 6),
            Math.Round(stats.CorrectFraction, 6),
            Math.Round(stats.MeanHops, 4),
            stats.P99Hops,
            Math.Round(Math.Log(nodes, 16), 4),
            Math.Round(stats.MessagesPerLookup, 4),
            stats.OtherMessages,
            memoryPerNode,
            buildMessages,
            stabilised?.TotalSeconds,
            Math.Round(joinSeconds, 2),
            Math.Round(wall.Elapsed.TotalSeconds, 2));
    }

    internal static string Header() =>
        $"{"nodes",8} {"meanHops",9} {"log16(N)",9} {"p99Hops",8} {"msgs/lookup",12} {"KiB/node",9} {"correct",8} {"build msgs",12} {"wall s",8}";

    internal static string Row(SeriesPoint p) =>
        $"{p.Nodes,8} {p.MeanHops,9:F3} {p.ExpectedHops,9:F3} {p.P99Hops,8} {p.MessagesPerLookup,12:F2} {p.MemoryBytesPerNode / 1024.0,9:F1} {p.Correct,8:F4} {p.BuildMessages,12:N0} {p.Seconds,8:F1}";
}
