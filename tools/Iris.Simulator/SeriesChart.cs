using System.Globalization;
using ScottPlot;

namespace Iris.Simulator;

/// <summary>The chart of the <c>series</c> mode: mean hops (left axis) with Pastry's expectation log₁₆ N, and managed
/// heap per node (right axis), against nodes on a log axis; 800x450 pixels.</summary>
internal static class SeriesChart
{
    public static void Write(string path, IReadOnlyList<SeriesPoint> points)
    {
        // ScottPlot draws a log axis from log10 values and a tick generator that labels them back.
        var xs = points.Select(p => Math.Log10(p.Nodes)).ToArray();
        var plot = new Plot();
        var hops = plot.Add.Scatter(xs, points.Select(p => p.MeanHops).ToArray());
        hops.LegendText = "mean hops (measured)";
        hops.LineWidth = 2;
        hops.MarkerSize = 8;

        // The expectation as a smooth line over the whole range, not only at the measured sizes.
        var low = xs.Min();
        var high = xs.Max();
        var curve = Enumerable.Range(0, 50).Select(i => low + ((high - low) * i / 49.0)).ToArray();
        var expected = plot.Add.Scatter(curve, curve.Select(x => x * Math.Log(10) / Math.Log(16)).ToArray());
        expected.LegendText = "log16(N) (Pastry)";
        expected.LinePattern = LinePattern.Dashed;
        expected.MarkerSize = 0;
        expected.Color = hops.Color;

        var memory = plot.Add.Scatter(xs, points.Select(p => p.MemoryBytesPerNode / 1024.0).ToArray());
        memory.LegendText = "managed heap per node, KiB (right)";
        memory.LineWidth = 2;
        memory.MarkerSize = 8;
        memory.Color = Colors.OrangeRed;
        memory.Axes.YAxis = plot.Axes.Right;

        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = x => Math.Pow(10, x).ToString("N0", CultureInfo.InvariantCulture),
        };
        plot.Axes.SetLimitsY(0, Math.Max(points.Max(p => p.MeanHops), Math.Log(points.Max(p => p.Nodes), 16)) * 1.25, plot.Axes.Left);
        plot.Axes.SetLimitsY(0, points.Max(p => p.MemoryBytesPerNode / 1024.0) * 1.25, plot.Axes.Right);
        plot.Title("Pastry ring: cost against size (simulated)");
        plot.XLabel("nodes (log scale)");
        plot.YLabel("hops");
        plot.Axes.Right.Label.Text = "KiB per node";
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 800, 450);
    }
}
