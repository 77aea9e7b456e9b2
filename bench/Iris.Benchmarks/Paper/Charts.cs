using System.Globalization;
using ScottPlot;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// Draws the paper's charts with ScottPlot: per workload, <c>&lt;workload&gt;-throughput.png</c> (messages per second)
/// and <c>&lt;workload&gt;-latency.png</c> (p50 as a solid bar, p99 as a lighter bar behind it), one group of bars per
/// payload size and one bar per system, 800x450 pixels.
/// </summary>
public static class Charts
{
    private const int Width = 800;
    private const int Height = 450;

    /// <summary>
    /// Writes the charts of every workload into <paramref name="directory"/> (created if needed) and returns their paths.
    /// </summary>
    /// <param name="directory">Where the PNG files go.</param>
    /// <param name="workloads">Workload name, then payload size in bytes, then system name ("iris", "orleans", "nats", …), to its figures.</param>
    public static IReadOnlyList<string> Write(
        string directory,
        IReadOnlyDictionary<string, IReadOnlyDictionary<int, IReadOnlyDictionary<string, Measurement>>> workloads)
    {
        Directory.CreateDirectory(directory);
        var files = new List<string>();
        foreach (var (workload, bySize) in workloads)
        {
            var sizes = bySize.Keys.Order().ToArray();
            var systems = bySize.Values.SelectMany(bySystem => bySystem.Keys).Distinct().ToArray();

            var throughput = Path.Combine(directory, $"{workload}-throughput.png");
            Draw(throughput, $"{workload}: throughput", "messages/s (log scale)", sizes, systems, bySize, m => m.PerSec, null, logarithmic: true);
            files.Add(throughput);

            var latency = Path.Combine(directory, $"{workload}-latency.png");
            Draw(latency, $"{workload}: latency (p50 solid, p99 light)", "ms", sizes, systems, bySize, m => m.P50Ms, m => m.P99Ms, logarithmic: false);
            files.Add(latency);
        }

        return files;
    }

    /// <summary>"16 B", "1 KiB", "64 KiB", "1 MiB".</summary>
    public static string SizeLabel(int bytes) => bytes switch
    {
        >= 1 << 20 when bytes % (1 << 20) == 0 => string.Create(CultureInfo.InvariantCulture, $"{bytes >> 20} MiB"),
        >= 1 << 10 when bytes % (1 << 10) == 0 => string.Create(CultureInfo.InvariantCulture, $"{bytes >> 10} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };

    private static void Draw(
        string path,
        string title,
        string yLabel,
        int[] sizes,
        string[] systems,
        IReadOnlyDictionary<int, IReadOnlyDictionary<string, Measurement>> bySize,
        Func<Measurement, double> value,
        Func<Measurement, double>? behind,
        bool logarithmic)
    {
        // Messages per second span three orders of magnitude from 16 B to 64 KiB: on a linear axis the 64 KiB group
        // would be invisible. ScottPlot draws a log axis from log10 values and a log tick generator.
        Func<double, double> scale = logarithmic ? v => Math.Log10(Math.Max(v, 1)) : v => v;
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var barWidth = 0.8 / systems.Length;
        var bars = new List<Bar>();
        var backBars = new List<Bar>();
        for (var group = 0; group < sizes.Length; group++)
        {
            for (var s = 0; s < systems.Length; s++)
            {
                if (!bySize[sizes[group]].TryGetValue(systems[s], out var measurement))
                {
                    continue;
                }

                var position = group + ((s - ((systems.Length - 1) / 2.0)) * barWidth);
                var color = palette.GetColor(s);
                if (behind is not null)
                {
                    backBars.Add(new Bar { Position = position, Value = scale(behind(measurement)), Size = barWidth * 0.9, FillColor = color.WithAlpha(0.35), LineWidth = 0 });
                }

                bars.Add(new Bar { Position = position, Value = scale(value(measurement)), Size = barWidth * 0.9, FillColor = color, LineWidth = 0 });
            }
        }

        // The p99 bars go first so the p50 bars are drawn over them.
        if (backBars.Count > 0)
        {
            plot.Add.Bars(backBars);
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(
            Enumerable.Range(0, sizes.Length).Select(i => (double)i).ToArray(),
            sizes.Select(SizeLabel).ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Margins(bottom: 0);
        if (logarithmic)
        {
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = y => Math.Pow(10, y).ToString("N0", CultureInfo.InvariantCulture),
            };
        }

        plot.Title(title);
        plot.YLabel(yLabel);
        plot.XLabel("payload");
        for (var s = 0; s < systems.Length; s++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = systems[s], FillColor = palette.GetColor(s) });
        }

        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, Width, Height);
    }
}
