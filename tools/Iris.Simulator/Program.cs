using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Iris.Simulator;

// The simulator's command line: `pastry|scribe [options]`; see SimulatorCommand.Usage.
return SimulatorCommand.Run(args, Console.Out, Console.Error);

internal static class SimulatorCommand
{
    private const string Usage = """
        Usage: Iris.Simulator pastry|scribe|series [options]
          --nodes N       nodes to join one after another (default 1000)
          --fail F        fraction of nodes crashed at once, 0 to 1 (default 0.1)
          --seed S        seed of keys, latencies and choices (default 1)
          --json          print only the result, as one JSON object on the last line
        pastry:
          --lookups N     lookups routed before and after the failure (default 10000)
          --encode        send every message through the binary codec, as on a socket
        scribe:
          --groups N      group names (default 20)
          --members N     members per group, on random nodes, capacities 1 to 10 (default 20)
          --messages N    messages per phase, half multicast, half anycast (default 2000)
          --splits K      groups each name is split over (default 4)
        series (a fresh ring per size, no failure; --lookups, --seed, --json as above):
          --sizes A,B,..  ring sizes (default 1000,10000,100000)
          --out DIR       where series.json and series.png go (default tools/Iris.Simulator/results)
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        if (args.Length == 0 || args[0] is not ("pastry" or "scribe" or "series"))
        {
            error.WriteLine(Usage);
            return 2;
        }

        int nodes = 1000, lookups = 10000, seed = 1, groups = 20, members = 20, messages = 2000, splits = 4;
        double fail = 0.1;
        bool json = false, encode = false;
        int[] sizes = [1000, 10000, 100000];
        string? outDirectory = null;
        try
        {
            for (var i = 1; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--nodes": nodes = ParseInt(args, ++i, 1, 1_000_000); break;
                    case "--lookups": lookups = ParseInt(args, ++i, 0, 100_000_000); break;
                    case "--seed": seed = ParseInt(args, ++i, int.MinValue, int.MaxValue); break;
                    case "--groups": groups = ParseInt(args, ++i, 1, 1_000_000); break;
                    case "--members": members = ParseInt(args, ++i, 1, 1_000_000); break;
                    case "--messages": messages = ParseInt(args, ++i, 0, 100_000_000); break;
                    case "--splits": splits = ParseInt(args, ++i, 1, 64); break;
                    case "--fail":
                        fail = double.Parse(Value(args, ++i), CultureInfo.InvariantCulture);
                        if (fail is < 0 or >= 1)
                        {
                            throw new FormatException($"--fail must be at least 0 and below 1; got {fail}.");
                        }

                        break;
                    case "--sizes": sizes = ParseSizes(Value(args, ++i)); break;
                    case "--out": outDirectory = Value(args, ++i); break;
                    case "--json": json = true; break;
                    case "--encode": encode = true; break;
                    default: throw new FormatException($"Unknown option '{args[i]}'.");
                }
            }
        }
        catch (FormatException e)
        {
            error.WriteLine(e.Message);
            error.WriteLine(Usage);
            return 2;
        }

        var progress = json ? error : output;
        if (args[0] == "scribe")
        {
            var scribe = ScribeCommand.Run(nodes, groups, members, messages, fail, seed, splits, progress);
            output.WriteLine(json ? JsonSerializer.Serialize(scribe, SimulatorJson.Default.ScribeResult) : $"{scribe}");
            return 0;
        }

        if (args[0] == "series")
        {
            var series = SeriesCommand.Run(sizes, lookups, seed, outDirectory ?? DefaultResults(), progress);
            if (!json)
            {
                output.WriteLine();
                output.WriteLine(SeriesCommand.Header());
                foreach (var point in series.Points)
                {
                    output.WriteLine(SeriesCommand.Row(point));
                }
            }

            output.WriteLine(JsonSerializer.Serialize(series, SimulatorJson.Default.SeriesResult));
            return 0;
        }

        var result = RunPastry(nodes, lookups, fail, seed, encode, progress);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(result, SimulatorJson.Default.PastryResult));
        }
        else
        {
            output.WriteLine();
            output.WriteLine($"{"",-8} {"delivered",10} {"correct",10} {"meanHops",9} {"p99Hops",8} {"maxHops",8} {"msgs/lookup",12}");
            output.WriteLine(Row("before", result.Before));
            output.WriteLine(Row("after", result.After));
            output.WriteLine($"{result.Nodes} nodes, {result.Lookups} lookups, {result.FailFraction:P1} failed; {result.MemoryBytesPerNode / 1024.0:F1} KiB managed heap per node; {result.Seconds:F1} s wall.");
        }

        return 0;
    }

    internal static PastryResult RunPastry(int nodes, int lookups, double fail, int seed, bool encode, TextWriter progress)
    {
        var wall = Stopwatch.StartNew();
        using var counters = new OverlayCounters();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        using var sim = new PastrySimulation(new PastrySimulationOptions { Seed = seed, EncodeMessages = encode });
        progress.WriteLine($"Joining {nodes} nodes (seed {seed})...");
        var step = Math.Max(1, nodes / 10);
        sim.AddNodes(nodes, TimeSpan.FromMilliseconds(2), joined =>
        {
            if (joined % step == 0)
            {
                progress.WriteLine($"  {joined} joined, {wall.Elapsed.TotalSeconds:F1} s");
            }
        });

        var stabilised = sim.Stabilise(TimeSpan.FromSeconds(120));
        progress.WriteLine(stabilised is { } s1
            ? $"Stable after {s1.TotalSeconds:F1} s of simulated time; routing {lookups} lookups..."
            : $"Not stable after 120 s of simulated time ({sim.WrongLeafSets()} wrong leaf sets); routing {lookups} lookups anyway...{Environment.NewLine}{sim.DescribeWrongLeafSets()}");
        var memoryPerNode = (GC.GetTotalMemory(forceFullCollection: true) - heapBefore) / nodes;
        var before = sim.Lookups(lookups);
        var failed = sim.Fail(fail);
        progress.WriteLine($"Crashed {failed.Count} nodes; waiting for detection and repair...");
        var repaired = sim.Stabilise(TimeSpan.FromSeconds(120));
        progress.WriteLine(repaired is { } s2
            ? $"Repaired after {s2.TotalSeconds:F1} s of simulated time; routing {lookups} lookups..."
            : $"Not repaired after 120 s of simulated time ({sim.WrongLeafSets()} wrong leaf sets); routing anyway...{Environment.NewLine}{sim.DescribeWrongLeafSets()}");
        var after = sim.Lookups(lookups);
        return new PastryResult(
            nodes, lookups, fail, seed, Summary(before), Summary(after),
            stabilised?.TotalSeconds, repaired?.TotalSeconds, sim.Network.Delivered, counters.Snapshot(), wall.Elapsed.TotalSeconds)
        {
            MemoryBytesPerNode = memoryPerNode,
        };
    }

    internal static LookupSummary Summary(LookupStats stats) => new(
        Math.Round(stats.DeliveredFraction, 6), Math.Round(stats.CorrectFraction, 6), Math.Round(stats.MeanHops, 4), stats.P99Hops, stats.MaxHops,
        Math.Round(stats.MessagesPerLookup, 4), stats.OtherMessages);

    private static string Row(string name, LookupSummary s) =>
        $"{name,-8} {s.Delivered,10:F4} {s.Correct,10:F4} {s.MeanHops,9:F3} {s.P99Hops,8} {s.MaxHops,8} {s.MessagesPerLookup,12:F2}";

    private static int[] ParseSizes(string text)
    {
        var sizes = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) || size is < 2 or > 1_000_000)
            {
                throw new FormatException($"--sizes takes ring sizes from 2 to 1000000 separated by commas; got '{text}'.");
            }

            sizes.Add(size);
        }

        return sizes.Count > 0 ? [.. sizes] : throw new FormatException("--sizes needs at least one size.");
    }

    /// <summary>tools/Iris.Simulator/results of the checkout this build came from, or ./results outside one.</summary>
    private static string DefaultResults()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Iris.Orleans.sln")))
            {
                return Path.Combine(dir.FullName, "tools", "Iris.Simulator", "results");
            }
        }

        return "results";
    }

    private static string Value(string[] args, int i) =>
        i < args.Length ? args[i] : throw new FormatException($"{args[i - 1]} needs a value.");

    private static int ParseInt(string[] args, int i, int min, int max)
    {
        var text = Value(args, i);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new FormatException($"{args[i - 1]} must be a whole number from {min} to {max}; got '{text}'.");
        }

        return value;
    }
}
