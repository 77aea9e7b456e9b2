using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ScottPlot;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// <c>dotnet run -c Release --project bench/Iris.Benchmarks -- clusters [--names 10,1000,100000] [--seconds N]
/// [--parallel P] [--json]</c>: how one silo's memory and request rate change with the number of cluster names it
/// serves. For each size a fresh <see cref="ClustersSilo"/> process registers that many names with an echo member each
/// (timed), then sits idle for one renewal period (its CPU then is the cost of keeping the names), reports its memory,
/// and serves 16 B echo requests from 16 callers of an Orleans client in this process, each to a random name. Prints a
/// table, writes <c>bench/results/clusters.json</c> and <c>clusters.png</c>.
/// </summary>
internal static class ClustersCommand
{
    private const int Callers = 16;
    private const int Payload = 16;

    // A silo renews each of its registrations every 10 s (SiloIrisClient): an idle window of one period sees one round.
    private static readonly TimeSpan IdleWindow = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(string[] args)
    {
        var json = args.Contains("--json");
        int[] sizes = Value(args, "--names") is { } list
            ? [.. list.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))]
            : [10, 1_000, 100_000];
        var seconds = Value(args, "--seconds") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 5;
        var parallel = Value(args, "--parallel") is { } p ? int.Parse(p, CultureInfo.InvariantCulture) : 256;
        var limit = TimeSpan.FromMinutes(Value(args, "--register-minutes") is { } m ? double.Parse(m, CultureInfo.InvariantCulture) : 20);
        var points = new List<ClustersPoint>();
        foreach (var names in sizes)
        {
            points.Add(await MeasureAsync(names, parallel, TimeSpan.FromSeconds(seconds), limit));
            Console.Error.WriteLine(Row(points[^1]));
        }

        Console.WriteLine();
        Console.WriteLine(Header);
        foreach (var point in points)
        {
            Console.WriteLine(Row(point));
        }

        var directory = Path.Combine(PaperCommand.Root, "bench", "results");
        Directory.CreateDirectory(directory);
        var result = new ClustersResult(Environment.ProcessorCount, Callers, Payload, seconds, parallel, points);
        var text = JsonSerializer.Serialize(result, JsonOptions);
        await File.WriteAllTextAsync(Path.Combine(directory, "clusters.json"), text + Environment.NewLine);
        Chart(Path.Combine(directory, "clusters.png"), points.Where(p => p.RequestsPerSec is not null).ToList());
        if (json)
        {
            Console.WriteLine(text);
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private const string Header = "   names  register s  names/s  idle CPU %  working set MiB  heap MiB  requests/s  p50 ms  p99 ms  CPU µs/req";

    private static string Row(ClustersPoint p) => string.Create(CultureInfo.InvariantCulture,
        $"{p.Names,8} {p.RegisterSeconds,11:F1} {p.Registered / p.RegisterSeconds,8:F0} {p.IdleCpuPercent,11:F1} {p.WorkingSetMb,16:F0} {p.HeapAfterGcMb,9:F0} {p.RequestsPerSec,11:F0} {p.P50Ms,7:F2} {p.P99Ms,7:F2} {p.CpuUsPerRequest,11:F0}{(p.Note is null ? "" : "  " + p.Note)}");

    private static async Task<ClustersPoint> MeasureAsync(int names, int parallel, TimeSpan duration, TimeSpan limit)
    {
        var dll = typeof(ClustersSilo).Assembly.Location;
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 53000 + (Random.Shared.Next(0, 60) * 16);
        var environment = new Dictionary<string, string>
        {
            ["Iris__Network__Key"] = key,
            ["Iris__Network__Discovery__Port"] = discovery.ToString(CultureInfo.InvariantCulture),
        };
        Console.Error.WriteLine($"{names} names: starting a silo");
        await using var silo = await ChildProcess.StartAsync(dll, ["clusters-silo"], environment, "READY", TimeSpan.FromSeconds(90));
        var started = Stopwatch.GetTimestamp();
        var cpuBefore = silo.CpuTime;
        string? note = null;
        var registered = names;
        using var watching = new CancellationTokenSource();
        var watcher = WatchProgressAsync(silo, watching.Token);
        try
        {
            await silo.AskAsync($"register {names} {parallel}", "REGISTERED ", limit);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            var progress = silo.Lines("PROGRESS ").LastOrDefault();
            registered = progress is null ? 0 : int.Parse(progress.Split(' ')[1], CultureInfo.InvariantCulture);
            note = e is TimeoutException
                ? $"registration not done within {limit.TotalMinutes:F0} min ({registered} at the last progress line)"
                : $"the silo exited during registration ({registered} at the last progress line)";
            Console.Error.WriteLine($"  {note}; the silo's last output:{Environment.NewLine}{silo.Output}");
        }

        await watching.CancelAsync();
        await watcher;

        var registerSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var registerCpu = (silo.CpuTime - cpuBefore).TotalSeconds;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  registered {registered} in {registerSeconds:F1} s ({registerCpu:F1} s of the silo's CPU)"));

        // A silo that did not finish registering is saturated keeping what it has: it may not even answer how much
        // memory it uses within a minute (a full collection of several GiB under that load), so the point stops here.
        if (note is not null)
        {
            return new ClustersPoint(names, registered, Math.Round(registerSeconds, 2), Math.Round(registerCpu, 2), 0, 0, 0, 0, null, null, null, null, note);
        }

        Console.Error.WriteLine($"  idle for {IdleWindow.TotalSeconds} s");
        var idleBefore = silo.CpuTime;
        var idleStarted = Stopwatch.GetTimestamp();
        await Task.Delay(IdleWindow);
        var idleCpu = 100 * (silo.CpuTime - idleBefore).TotalSeconds / Stopwatch.GetElapsedTime(idleStarted).TotalSeconds;
        var memory = Fields(await silo.AskAsync("memory", "MEMORY ", TimeSpan.FromSeconds(60)));

        Measurement? load = null;
        var failures = 0;
        if (note is null)
        {
            using var client = await IrisSide.ConnectAsync(key, discovery);
            var iris = client.Services.GetRequiredService<IIrisClient>();
            var payload = new byte[Payload];
            async Task Call()
            {
                try
                {
                    await iris.RequestAsync(ClustersSilo.Name(Random.Shared.Next(names)), payload, TimeSpan.FromSeconds(10));
                }
                catch (IrisException)
                {
                    // Counted, not fatal: a silo busy keeping its names answers late or not at all.
                    Interlocked.Increment(ref failures);
                }
            }

            Console.Error.WriteLine("  echo requests to random names");
            load = await Load.MeasureAsync(Call, Callers, Payload, TimeSpan.FromSeconds(2), duration, () => Environment.CpuUsage.TotalTime + silo.CpuTime);
            await client.StopAsync();
        }

        const double MiB = 1024.0 * 1024;
        return new ClustersPoint(
            names,
            registered,
            Math.Round(registerSeconds, 2),
            Math.Round(registerCpu, 2),
            Math.Round(idleCpu, 1),
            Math.Round(memory["workingSet"] / MiB, 1),
            Math.Round(memory["heapAfterGc"] / MiB, 1),
            Math.Round(silo.PeakMemoryMb, 1),
            load is null ? null : Math.Round(load.PerSec),
            load is null ? null : Math.Round(load.P50Ms, 3),
            load is null ? null : Math.Round(load.P99Ms, 3),
            load is null ? null : Math.Round(load.CpuUsPerMsg, 1),
            failures == 0 ? note : $"{failures} requests failed (10 s timeout){(note is null ? "" : "; " + note)}");
    }

    /// <summary>Prints the silo's progress lines as they come, with the silo's CPU and working set.</summary>
    private static async Task WatchProgressAsync(ChildProcess silo, CancellationToken cancellationToken)
    {
        var printed = 0;
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                var lines = silo.Lines("PROGRESS ");
                for (; printed < lines.Count; printed++)
                {
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {lines[printed]} (silo CPU {silo.CpuTime.TotalSeconds:F0} s, peak working set {silo.PeakMemoryMb:F0} MiB)"));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (InvalidOperationException)
        {
            // The silo exited: the registration reports it.
        }
    }

    private static Dictionary<string, double> Fields(string line) =>
        line.Split(' ').Skip(1).Select(f => f.Split('=')).ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));

    private static string? Value(string[] args, string name) =>
        Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

    /// <summary>Working set and heap (left axis) and requests/s (right axis) against names on a log axis.</summary>
    private static void Chart(string path, List<ClustersPoint> points)
    {
        if (points.Count == 0)
        {
            return;
        }

        var xs = points.Select(p => Math.Log10(p.Names)).ToArray();
        var plot = new Plot();
        var workingSet = plot.Add.Scatter(xs, points.Select(p => p.WorkingSetMb).ToArray());
        workingSet.LegendText = "silo working set, MiB";
        workingSet.LineWidth = 2;
        workingSet.MarkerSize = 8;
        var heap = plot.Add.Scatter(xs, points.Select(p => p.HeapAfterGcMb).ToArray());
        heap.LegendText = "silo managed heap after GC, MiB";
        heap.LineWidth = 2;
        heap.MarkerSize = 8;
        heap.LinePattern = LinePattern.Dashed;
        heap.Color = workingSet.Color;
        var rate = plot.Add.Scatter(xs, points.Select(p => p.RequestsPerSec ?? 0).ToArray());
        rate.LegendText = "echo requests/s, 16 callers (right)";
        rate.LineWidth = 2;
        rate.MarkerSize = 8;
        rate.Color = Colors.OrangeRed;
        rate.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = x => Math.Pow(10, x).ToString("N0", CultureInfo.InvariantCulture),
        };
        plot.Axes.SetLimitsY(0, points.Max(p => p.WorkingSetMb) * 1.25, plot.Axes.Left);
        plot.Axes.SetLimitsY(0, points.Max(p => p.RequestsPerSec ?? 0) * 1.25, plot.Axes.Right);
        plot.Title("One Iris silo: cost against cluster names served");
        plot.XLabel("cluster names (log scale)");
        plot.YLabel("MiB");
        plot.Axes.Right.Label.Text = "requests/s";
        plot.ShowLegend(Alignment.LowerLeft);
        plot.SavePng(path, 800, 450);
    }
}

/// <summary>One size of the <c>clusters</c> harness.</summary>
internal sealed record ClustersPoint(
    int Names,
    int Registered,
    double RegisterSeconds,
    double RegisterCpuSeconds,
    double IdleCpuPercent,
    double WorkingSetMb,
    double HeapAfterGcMb,
    double PeakWorkingSetMb,
    double? RequestsPerSec,
    double? P50Ms,
    double? P99Ms,
    double? CpuUsPerRequest,
    string? Note);

/// <summary>The JSON of the <c>clusters</c> harness (<c>bench/results/clusters.json</c>).</summary>
internal sealed record ClustersResult(int Processors, int Callers, int Payload, int Seconds, int Parallel, IReadOnlyList<ClustersPoint> Points);
