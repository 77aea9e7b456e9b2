using System.Globalization;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// <c>nats-check</c>: runs the three NATS workloads at 16 B, 1 KiB and 64 KiB against a <see cref="NatsServer"/>,
/// prints one line per workload and payload, and draws the charts (system "nats" only) into <c>bench/results/</c>.
/// </summary>
public static class NatsCheck
{
    private static readonly int[] Payloads = [16, 1024, 65536];
    private const int Callers = 16;

    /// <summary>Runs the check; <c>--seconds N</c> (default 3) is the measurement time of each workload and payload.</summary>
    public static async Task RunAsync(string[] args)
    {
        var seconds = 3;
        var index = Array.IndexOf(args, "--seconds");
        if (index >= 0 && index + 1 < args.Length)
        {
            seconds = int.Parse(args[index + 1], CultureInfo.InvariantCulture);
        }

        var duration = TimeSpan.FromSeconds(seconds);
        await using var server = await NatsServer.StartAsync();
        Console.WriteLine($"nats-server at {server.Url}, {seconds} s per workload and payload after 1 s warm-up, {Callers} callers for requests");
        Console.WriteLine($"{"workload",-9} {"payload",8} {"msg/s",12} {"MB/s",9} {"p50 ms",8} {"p99 ms",8} {"CPU µs/msg",11}");

        var workloads = new Dictionary<string, IReadOnlyDictionary<int, IReadOnlyDictionary<string, Measurement>>>();
        var runs = new (string Name, Func<int, Task<Measurement>> Run)[]
        {
            ("requests", payload => NatsWorkloads.RequestAsync(server, payload, Callers, duration)),
            ("fanout", payload => NatsWorkloads.FanOutAsync(server, payload, duration)),
            ("stream", payload => NatsWorkloads.StreamAsync(server, payload, duration)),
        };
        foreach (var (name, run) in runs)
        {
            var bySize = new Dictionary<int, IReadOnlyDictionary<string, Measurement>>();
            foreach (var payload in Payloads)
            {
                var m = await run(payload);
                bySize[payload] = new Dictionary<string, Measurement> { ["nats"] = m };
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-9} {Charts.SizeLabel(payload),8} {m.PerSec,12:F0} {m.MbPerSec,9:F1} {m.P50Ms,8:F3} {m.P99Ms,8:F3} {m.CpuUsPerMsg,11:F2}"));
            }

            workloads[name] = bySize;
        }

        var directory = Path.Combine(FindRepositoryRoot(), "bench", "results");
        foreach (var file in Charts.Write(directory, workloads))
        {
            Console.WriteLine($"wrote {file}");
        }
    }

    private static string FindRepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? Directory.GetCurrentDirectory();
    }
}
