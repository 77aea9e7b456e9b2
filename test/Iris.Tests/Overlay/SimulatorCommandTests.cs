using System.Text.Json;
using Iris.Simulator;
using Iris.Tests.Support;

namespace Iris.Tests.Overlay;

public class SimulatorCommandTests
{
    [Fact]
    public void The_pastry_command_prints_its_result_as_json_on_the_last_line()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = SimulatorCommand.Run(["pastry", "--nodes", "200", "--lookups", "1000", "--fail", "0.1", "--seed", "2", "--json"], output, error);
        Assert.Equal(0, exit);

        var last = output.ToString().TrimEnd().Split('\n')[^1];
        using var json = JsonDocument.Parse(last);
        var root = json.RootElement;
        Assert.Equal(200, root.GetProperty("nodes").GetInt32());
        Assert.Equal(1000, root.GetProperty("lookups").GetInt32());
        Assert.Equal(0.1, root.GetProperty("failFraction").GetDouble());
        foreach (var phase in new[] { "before", "after" })
        {
            var stats = root.GetProperty(phase);
            Assert.Equal(1.0, stats.GetProperty("delivered").GetDouble());
            Assert.Equal(1.0, stats.GetProperty("correct").GetDouble());
            Assert.InRange(stats.GetProperty("meanHops").GetDouble(), 1, 4);
            Assert.True(stats.GetProperty("p99Hops").GetInt32() <= stats.GetProperty("maxHops").GetInt32());
        }

        Assert.True(root.GetProperty("seconds").GetDouble() > 0);
        Assert.True(root.GetProperty("counters").GetProperty("iris.overlay.failures.detected").GetInt64() >= 20);
    }

    [Fact]
    public async Task The_series_command_prints_one_point_per_size_and_writes_its_json_and_chart()
    {
        var directory = Path.Combine(Path.GetTempPath(), "iris-series-" + Guid.NewGuid().ToString("N"));
        try
        {
            // In a process of its own: the series measures heap per node from the process's whole managed heap, which in
            // the test host other tests running beside it grow and shrink.
            var simulator = Path.Combine(AppContext.BaseDirectory, "Iris.Simulator.dll");
            await using var child = ChildProcess.Start("dotnet", [simulator, "series", "--sizes", "50,100", "--lookups", "500", "--seed", "3", "--out", directory, "--json"]);
            await child.WaitForExitAsync(TimeSpan.FromSeconds(120));
            await child.WaitForAsync(_ => child.HasExited, TimeSpan.FromSeconds(10), "the end of the series command's output");
            Assert.True(child.ExitCode == 0, $"the series command exited with {child.ExitCode}:\n{child.Output}");

            using var json = JsonDocument.Parse(child.Lines.Last(l => l.StartsWith('{')));
            var points = json.RootElement.GetProperty("points");
            Assert.Equal(2, points.GetArrayLength());
            Assert.Equal([50, 100], points.EnumerateArray().Select(p => p.GetProperty("nodes").GetInt32()));
            foreach (var point in points.EnumerateArray())
            {
                Assert.Equal(500, point.GetProperty("lookups").GetInt32());
                Assert.Equal(1.0, point.GetProperty("delivered").GetDouble());
                Assert.Equal(1.0, point.GetProperty("correct").GetDouble());
                var hops = point.GetProperty("meanHops").GetDouble();
                Assert.InRange(hops, 0.5, 4);

                // Each hop is one routed message and one acknowledgement.
                Assert.InRange(point.GetProperty("messagesPerLookup").GetDouble(), (2 * hops) - 0.01, (2 * hops) + 0.01);
                Assert.InRange(point.GetProperty("expectedHops").GetDouble(), 1.4, 1.7);
                Assert.InRange(point.GetProperty("memoryBytesPerNode").GetInt64(), 1_000, 1_000_000);
                Assert.True(point.GetProperty("buildMessages").GetInt64() > 0);
                Assert.True(point.GetProperty("seconds").GetDouble() > 0);
            }

            Assert.True(File.Exists(Path.Combine(directory, "series.json")));
            Assert.True(new FileInfo(Path.Combine(directory, "series.png")).Length > 0);
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Fact]
    public void Bad_arguments_print_the_usage_and_fail()
    {
        var error = new StringWriter();
        Assert.Equal(2, SimulatorCommand.Run(["pastry", "--fail", "2"], new StringWriter(), error));
        Assert.Contains("--fail must be", error.ToString());
        Assert.Equal(2, SimulatorCommand.Run(["raft"], new StringWriter(), error));
        Assert.Contains("Usage", error.ToString());
    }
}

public class ScribeCommandTests
{
    [Fact]
    public void The_scribe_command_prints_its_result_as_json_on_the_last_line()
    {
        var output = new StringWriter();
        var exit = SimulatorCommand.Run(["scribe", "--nodes", "300", "--groups", "10", "--members", "10", "--messages", "1000", "--fail", "0.1", "--seed", "2", "--json"], output, new StringWriter());
        Assert.Equal(0, exit);

        using var json = System.Text.Json.JsonDocument.Parse(output.ToString().TrimEnd().Split('\n')[^1]);
        var root = json.RootElement;
        Assert.Equal(300, root.GetProperty("nodes").GetInt32());
        var before = root.GetProperty("before");
        Assert.Equal(1.0, before.GetProperty("multicastDelivery").GetDouble());
        Assert.Equal(0, before.GetProperty("multicastDuplicates").GetInt64());
        Assert.True(before.GetProperty("anycastShareTvd").GetDouble() <= 0.03);
        var after = root.GetProperty("after");
        Assert.True(after.GetProperty("multicastDelivery").GetDouble() >= 0.999);
        Assert.True(after.GetProperty("anycastDelivered").GetDouble() >= 0.999);
        Assert.True(before.GetProperty("meanTreeDepth").GetDouble() > 0);
        Assert.True(before.GetProperty("maxChildren").GetInt32() > 0);
        Assert.True(before.GetProperty("rootLoadMaxOverMean").GetDouble() >= 1);
    }
}
