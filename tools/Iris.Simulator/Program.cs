using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Iris.Simulator;

// The simulator's command line: `pastry|scribe [options]`; see SimulatorCommand.Usage.
return SimulatorCommand.Run(args, Console.Out, Console.Error);

internal static class SimulatorCommand
{
    private const string Usage = """
        Usage: Iris.Simulator pastry|scribe [options]
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
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        if (args.Length == 0 || args[0] is not ("pastry" or "scribe"))
        {
            error.WriteLine(Usage);
            return 2;
        }

        int nodes = 1000, lookups = 10000, seed = 1, groups = 20, members = 20, messages = 2000, splits = 4;
        double fail = 0.1;
        bool json = false, encode = false;
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

        var result = RunPastry(nodes, lookups, fail, seed, encode, progress);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(result, SimulatorJson.Default.PastryResult));
        }
        else
        {
            output.WriteLine();
            output.WriteLine($"{"",-8} {"delivered",10} {"correct",10} {"meanHops",9} {"p99Hops",8} {"maxHops",8}");
            output.WriteLine(Row("before", result.Before));
            output.WriteLine(Row("after", result.After));
            output.WriteLine($"{result.Nodes} nodes, {result.Lookups} lookups, {result.FailFraction:P1} failed; {result.Seconds:F1} s wall.");
        }

        return 0;
    }

    internal static PastryResult RunPastry(int nodes, int lookups, double fail, int seed, bool encode, TextWriter progress)
    {
        var wall = Stopwatch.StartNew();
        using var counters = new OverlayCounters();
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
            stabilised?.TotalSeconds, repaired?.TotalSeconds, sim.Network.Delivered, counters.Snapshot(), wall.Elapsed.TotalSeconds);
    }

    private static LookupSummary Summary(LookupStats stats) => new(
        Math.Round(stats.DeliveredFraction, 6), Math.Round(stats.CorrectFraction, 6), Math.Round(stats.MeanHops, 4), stats.P99Hops, stats.MaxHops);

    private static string Row(string name, LookupSummary s) =>
        $"{name,-8} {s.Delivered,10:F4} {s.Correct,10:F4} {s.MeanHops,9:F3} {s.P99Hops,8} {s.MaxHops,8}";

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
