using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Benchmarks;

/// <summary>
/// Request/reply throughput through <see cref="IClusterGrain.Request"/>, as a user would run it: two Iris.Silo processes
/// of this repository's Release build on loopback (overlay membership, network key on, each silo serving the echo
/// cluster), and an Orleans client in this process calling the cluster grain with several callers at once. Prints
/// requests/s, latency percentiles and the CPU time a request costs (client and silos together), one line per run, and writes them to
/// <c>BenchmarkDotNet.Artifacts/requests.json</c>. <c>bench/compare-requests.sh</c> runs it against another checkout in
/// the same session and prints the ratio.
/// </summary>
public static class RequestThroughput
{
    public static async Task RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 10);
        var callers = Option(args, "--callers", 16);
        var payload = Option(args, "--payload", 16);
        var root = FindRoot();
        var silo = Path.Combine(root, "src", "Iris.Silo", "bin", "Release", "net10.0", "Iris.Silo.dll");
        if (!File.Exists(silo))
        {
            throw new FileNotFoundException($"Build the silo first: dotnet build -c Release src/Iris.Silo ({silo} is missing).");
        }

        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 49000 + (Random.Shared.Next(0, 60) * 16);
        var silos = new List<Process>();
        try
        {
            for (var i = 1; i <= 2; i++)
            {
                silos.Add(await StartSiloAsync(silo, key, discovery, i));
            }

            using var client = await StartClientAsync(key, discovery);
            var grain = client.Services.GetRequiredService<IClusterClient>().GetGrain<IClusterGrain>("echo");
            var request = new byte[payload];
            await RunCallersAsync(() => grain.Request(request, TimeSpan.FromSeconds(10)), callers, TimeSpan.FromSeconds(3));
            var cpuBefore = CpuTime(silos);
            var clientBefore = Environment.CpuUsage.TotalTime;
            var (count, latencies) = await RunCallersAsync(() => grain.Request(request, TimeSpan.FromSeconds(10)), callers, TimeSpan.FromSeconds(seconds));
            var cpuPerRequest = (CpuTime(silos) - cpuBefore).TotalMicroseconds / count;
            var clientPerRequest = (Environment.CpuUsage.TotalTime - clientBefore).TotalMicroseconds / count;
            latencies.Sort();
            var rate = count / (double)seconds;
            var p50 = latencies[latencies.Count / 2];
            var p99 = latencies[(int)(latencies.Count * 0.99)];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"requests callers={callers} payload={payload} rate={rate:F0}/s p50={p50:F2}ms p99={p99:F2}ms cpu={cpuPerRequest:F1}us/request (client {clientPerRequest:F1}us)"));
            Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
            File.WriteAllText(Path.Combine("BenchmarkDotNet.Artifacts", "requests.json"), JsonSerializer.Serialize(new { callers, payload, seconds, rate, p50, p99, cpuPerRequest }));
            await client.StopAsync();
        }
        finally
        {
            foreach (var process in silos)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
    }

    /// <summary>CPU time of this process and the silos: steadier than throughput on a shared machine.</summary>
    private static TimeSpan CpuTime(List<Process> silos)
    {
        var total = Environment.CpuUsage.TotalTime;
        foreach (var silo in silos)
        {
            silo.Refresh();
            total += silo.TotalProcessorTime;
        }

        return total;
    }

    /// <summary>An Orleans client of the network with Iris, started.</summary>
    internal static async Task<IHost> StartClientAsync(string key, int discovery)
    {
        var client = Host.CreateDefaultBuilder()
            .ConfigureLogging(logging => logging.ClearProviders())
            .UseOrleansClient(orleans => orleans.UseIris(options =>
            {
                options.NetworkKey = key;
                options.DiscoveryPort = discovery;
            }))
            .Build();
        await client.StartAsync();
        return client;
    }

    /// <summary>Runs <paramref name="callers"/> loops of <paramref name="call"/> for <paramref name="duration"/>: the
    /// calls completed and each one's latency in milliseconds.</summary>
    internal static async Task<(long Count, List<double> Latencies)> RunCallersAsync(Func<Task> call, int callers, TimeSpan duration)
    {
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long count = 0;
        var latencies = new List<double>();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            var mine = new List<double>();
            while (Stopwatch.GetTimestamp() < end)
            {
                var started = Stopwatch.GetTimestamp();
                await call();
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            Interlocked.Add(ref count, mine.Count);
            lock (latencies)
            {
                latencies.AddRange(mine);
            }
        })));
        return (count, latencies);
    }

    /// <summary>Starts an Iris.Silo process serving the echo cluster, with <paramref name="settings"/> besides, and waits
    /// until its Orleans cluster has <paramref name="active"/> silos.</summary>
    internal static async Task<Process> StartSiloAsync(string dll, string key, int discovery, int active, IDictionary<string, string>? settings = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(dll);
        start.Environment["DOTNET_ENVIRONMENT"] = "Development";
        start.Environment["Iris__Network__Key"] = key;
        start.Environment["Iris__Network__Discovery__Port"] = discovery.ToString(CultureInfo.InvariantCulture);
        start.Environment["Iris__Silo__EchoCluster"] = "echo";

        // Without the Orleans dashboard, whose profiler times every grain call: the baselines have none.
        start.Environment["Iris__Http__Dashboard"] = "false";
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains($"has {active} active silos", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return process;
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    internal static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Iris.Orleans.sln not found above " + AppContext.BaseDirectory);
    }
}
