using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// <c>dotnet run -c Release --project bench/Iris.Benchmarks -- paper [--quick] [--json]</c>: the workloads of the Iris
/// paper measured side by side with their baselines in one run on this machine, printed as one table per workload with
/// the ratios, and written to <c>bench/results/latest.json</c>. Today: request/reply (echo), through
/// <c>IIrisClient.RequestAsync</c> and through <c>IClusterGrain.Request</c> from an Orleans client, against a plain
/// Orleans client calling a <c>[StatelessWorker]</c> echo grain (4 silo processes each side), and NATS (4 responders in a
/// queue group on a local nats-server). PNG charts go to <c>bench/results</c>.
/// </summary>
internal static class PaperCommand
{
    private const int Silos = 4;
    private static readonly int[] Payloads = [16, 1024, 65536];

    /// <summary>The repository's root (where Iris.Orleans.sln is).</summary>
    public static string Root { get; } = FindRoot();

    public static async Task RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var json = args.Contains("--json");
        // --callers N: only that many concurrent callers (for profiling one regime).
        int[] callers = Option(args, "--callers") is { } fixedCallers ? [fixedCallers] : quick ? [16] : [1, 16, 64];
        var warmUp = TimeSpan.FromSeconds(quick ? 0.75 : 2);

        // Each system's first seconds are its slowest (JIT tiers, connections, Iris' member lists): one longer warm-up
        // per system before its first cell, then a short one per cell.
        var firstWarmUp = TimeSpan.FromSeconds(Option(args, "--warm-up") ?? (quick ? 7 : 20));

        // ... and longer while the runtime still compiles hot methods (Compilation), up to this long in all. The quick
        // run cannot wait for that within its 3 minutes: it measures the share compiling in its last 2 s of warm-up
        // and prints it, so its cells are read knowing it.
        var longestWarmUp = firstWarmUp + TimeSpan.FromSeconds(quick ? 2 : 60);
        var duration = TimeSpan.FromSeconds(Option(args, "--seconds") ?? (quick ? 2 : 5));

        // Broadcast, publish and streaming cells of every system send without pause and fill their windows within
        // milliseconds: a shorter warm-up and window each keep the quick run within its 3 minutes.
        var streamWarmUp = quick ? TimeSpan.FromMilliseconds(500) : NatsWorkloads.WarmUp;
        var streamDuration = Option(args, "--seconds") is null && quick ? TimeSpan.FromSeconds(1.5) : duration;

        // Broadcast and publish warm up in rounds of 20,000 messages each, until compilation settles or this long has
        // passed (one round in the quick run; --dissemination-warm-up N: up to N s).
        var disseminationWarmUp = TimeSpan.FromSeconds(Option(args, "--dissemination-warm-up") ?? (quick ? 0 : 60));

        // For profiling one side: --only iris|iris-requests|iris-tunnel|orleans|nats|dissemination, --payload N, --warm-up N (seconds),
        // --seconds N (each cell's window).
        var only = Array.IndexOf(args, "--only") is var o and >= 0 && o + 1 < args.Length ? args[o + 1] : null;
        int[] payloads = Option(args, "--payload") is { } single ? [single] : Payloads;

        // --compare-routes: Iris requests also from a client without one-hop routes (irisViaGrain), in the same run.
        var compareRoutes = args.Contains("--compare-routes");

        // --echo-members N: only the first N Iris silos serve the echo cluster (4 by default, one member per silo).
        var echoMembers = Option(args, "--echo-members") ?? Silos;

        // request[callers][payload][system]
        var request = new SortedDictionary<int, SortedDictionary<int, Dictionary<string, Measurement>>>();
        Dictionary<string, Measurement> Cell(int c, int payload) =>
            (request.TryGetValue(c, out var byPayload) ? byPayload : request[c] = [])
                .TryGetValue(payload, out var cell) ? cell : request[c][payload] = [];

        var memory = new Dictionary<string, double>();

        // broadcast, publish and tunnel: workload → payload → system.
        var fanOut = new Dictionary<string, SortedDictionary<int, Dictionary<string, Measurement>>> { ["broadcast"] = [], ["publish"] = [], ["tunnel"] = [] };
        Dictionary<string, Measurement> FanCell(string workload, int payload) =>
            fanOut[workload].TryGetValue(payload, out var cell) ? cell : fanOut[workload][payload] = [];
        if (only is null or "orleans")
        {
            await RunOrleansAsync();
        }

        if (only is null or "iris" or "iris-requests")
        {
            await RunIrisAsync();
        }

        if (only is null or "nats")
        {
            await RunNatsAsync();
        }

        if (only is null or "iris" or "dissemination" or "iris-tunnel")
        {
            Console.Error.WriteLine("Iris: starting 4 silos with counting members");
            await using var iris = await Dissemination.StartAsync(Silos);
            await iris.WarmUpAsync(disseminationWarmUp);
            foreach (var workload in only is "iris-tunnel" ? [] : new[] { "broadcast", "publish" })
            {
                foreach (var payload in payloads)
                {
                    FanCell(workload, payload)["iris"] = await iris.MeasureAsync(workload == "broadcast", payload, streamWarmUp, streamDuration);
                    Console.Error.WriteLine(FanLine(workload, "iris", payload, FanCell(workload, payload)["iris"]));
                }
            }

            foreach (var payload in payloads)
            {
                FanCell("tunnel", payload)["iris"] = await iris.StreamAsync(payload, streamWarmUp, streamDuration);
                Console.Error.WriteLine(FanLine("tunnel", "iris", payload, FanCell("tunnel", payload)["iris"]));
            }

            memory["irisDissemination"] = iris.PeakMemoryMb;
        }

        if (only is null or "nats" or "dissemination")
        {
            await using var server = await NatsServer.StartAsync();
            foreach (var payload in payloads)
            {
                // NATS subjects are publish/subscribe: its fan-out to 4 subscribers is the baseline of both.
                var nats = await NatsWorkloads.FanOutAsync(server, payload, streamDuration, streamWarmUp);
                FanCell("broadcast", payload)["nats"] = nats;
                FanCell("publish", payload)["nats"] = nats;
                Console.Error.WriteLine(FanLine("fan-out", "nats", payload, nats));
                FanCell("tunnel", payload)["nats"] = await NatsWorkloads.StreamAsync(server, Math.Max(payload, 16), streamDuration, streamWarmUp);
                Console.Error.WriteLine(FanLine("tunnel", "nats", payload, FanCell("tunnel", payload)["nats"]));
            }
        }

        async Task RunNatsAsync()
        {
            Console.Error.WriteLine("NATS: starting nats-server");
            await using var server = await NatsServer.StartAsync();
            foreach (var c in callers)
            {
                foreach (var payload in payloads)
                {
                    Cell(c, payload)["nats"] = await NatsWorkloads.RequestAsync(server, payload, c, duration, quick ? warmUp : null);
                    Console.Error.WriteLine(Line("nats", c, payload, Cell(c, payload)["nats"]));
                }
            }
        }

        async Task RunOrleansAsync()
        {
            Console.Error.WriteLine(OrleansBaseline.Secured ? "plain Orleans, on Iris' secured connections (" + OrleansBaseline.SecuredVariable + "=1): starting 4 silos" : "plain Orleans: starting 4 silos");
            var (orleansSilos, gateways) = await OrleansBaseline.StartAsync(Silos);
            try
            {
                using var client = await OrleansBaseline.ConnectAsync(gateways);
                var factory = client.Services.GetRequiredService<IGrainFactory>();
                var echo = factory.GetGrain<IBenchEchoGrain>(0);

                // The same calls spread over 64 grain ids: a client sends a grain's calls to the gateway its id maps to,
                // and a stateless worker runs on the silo that received the call, so every silo serves, one hop each,
                // as Iris' four members do. With one id, one silo serves every call.
                var spread = Enumerable.Range(0, 64).Select(id => factory.GetGrain<IBenchEchoGrain>(id)).ToArray();
                var next = 0;
                IBenchEchoGrain Spread() => spread[(int)((uint)Interlocked.Increment(ref next) % spread.Length)];
                TimeSpan Cpu() => Environment.CpuUsage.TotalTime + orleansSilos.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.CpuTime);
                var small = new byte[16];
                await Compilation.WarmUpAsync(() => echo.Echo(small), 16, firstWarmUp, longestWarmUp, () => [Environment.ProcessId, .. orleansSilos.Select(s => s.Id)], "orleans");
                await Load.WarmUpAsync(() => Spread().Echo(small), 16, firstWarmUp / 6);
                foreach (var c in callers)
                {
                    foreach (var payload in payloads)
                    {
                        var body = new byte[payload];
                        Cell(c, payload)["orleans"] = await Load.MeasureAsync(() => echo.Echo(body), c, payload, warmUp, duration, Cpu);
                        Console.Error.WriteLine(Line("orleans", c, payload, Cell(c, payload)["orleans"]));
                        Cell(c, payload)["orleansSpread"] = await Load.MeasureAsync(() => Spread().Echo(body), c, payload, warmUp, duration, Cpu);
                        Console.Error.WriteLine(Line("orleansSpread", c, payload, Cell(c, payload)["orleansSpread"]));
                    }
                }

                // The stream of the tunnel workload: one-way calls to one grain.
                var grains = client.Services.GetRequiredService<IGrainFactory>();
                await OrleansBaseline.StreamAsync(grains, 16, TimeSpan.FromSeconds(1), Cpu);
                foreach (var payload in payloads)
                {
                    FanCell("tunnel", payload)["orleans"] = await OrleansBaseline.StreamAsync(grains, payload, streamDuration, Cpu);
                    Console.Error.WriteLine(FanLine("tunnel", "orleans", payload, FanCell("tunnel", payload)["orleans"]));
                }

                memory["orleans"] = orleansSilos.Max(s => s.PeakMemoryMb);
                await client.StopAsync();
            }
            finally
            {
                foreach (var silo in orleansSilos)
                {
                    await silo.DisposeAsync();
                }
            }
        }

        async Task RunIrisAsync()
        {
            Console.Error.WriteLine("Iris: starting 4 silos");
            var (irisSilos, irisClient, connect) = await IrisSide.StartAsync(Silos, echoMembers);
            using var viaGrain = compareRoutes ? await connect(false) : null;
            try
            {
                var iris = irisClient.Services.GetRequiredService<IIrisClient>();
                using var routes = new RouteCounter();
                var grain = irisClient.Services.GetRequiredService<IClusterClient>().GetGrain<IClusterGrain>(IrisSide.EchoCluster);
                var timeout = TimeSpan.FromSeconds(30);
                TimeSpan Cpu() => Environment.CpuUsage.TotalTime + irisSilos.Aggregate(TimeSpan.Zero, (sum, s) => sum + s.CpuTime);

                // The members register as their silos start; the first request waits until the cluster is served.
                await WaitServedAsync(iris);
                var small = new byte[16];
                await Compilation.WarmUpAsync(
                    () => iris.RequestAsync(IrisSide.EchoCluster, small, timeout), 16, firstWarmUp, longestWarmUp, () => [Environment.ProcessId, .. irisSilos.Select(s => s.Id)], "iris");

                // A new client calls a silo's members in one hop once Orleans' gateway list has held that silo's gateway
                // for a refresh period (DirectRoutes); until then its requests go through the grain, two hops. A
                // client that has run that long is what the cells measure, so the warm-up goes on until it does.
                routes.Take();
                for (var slice = 0; slice < 30; slice++)
                {
                    await Load.WarmUpAsync(() => iris.RequestAsync(IrisSide.EchoCluster, small, timeout), 16, TimeSpan.FromSeconds(1));
                    if (routes.TakeDirectShare() >= 0.95)
                    {
                        break;
                    }
                }

                await Load.WarmUpAsync(() => grain.Request(small, timeout), 16, firstWarmUp / 2);
                if (viaGrain?.Services.GetRequiredService<IIrisClient>() is { } warming)
                {
                    await Load.WarmUpAsync(() => warming.RequestAsync(IrisSide.EchoCluster, small, timeout), 16, firstWarmUp / 2);
                }

                foreach (var c in callers)
                {
                    foreach (var payload in payloads)
                    {
                        var body = new byte[payload];
                        routes.Take();
                        Cell(c, payload)["iris"] = await Load.MeasureAsync(() => iris.RequestAsync(IrisSide.EchoCluster, body, timeout), c, payload, warmUp, duration, Cpu);
                        Console.Error.WriteLine($"{Line("iris", c, payload, Cell(c, payload)["iris"])} calls: {routes.Take()}");
                        if (viaGrain?.Services.GetRequiredService<IIrisClient>() is { } twoHop)
                        {
                            Cell(c, payload)["irisViaGrain"] = await Load.MeasureAsync(() => twoHop.RequestAsync(IrisSide.EchoCluster, body, timeout), c, payload, warmUp, duration, Cpu);
                            Console.Error.WriteLine($"{Line("irisViaGrain", c, payload, Cell(c, payload)["irisViaGrain"])} calls: {routes.Take()}");
                        }

                        Cell(c, payload)["irisClusterGrain"] = await Load.MeasureAsync(() => grain.Request(body, timeout), c, payload, warmUp, duration, Cpu);
                        Console.Error.WriteLine(Line("irisClusterGrain", c, payload, Cell(c, payload)["irisClusterGrain"]));
                    }
                }

                memory["iris"] = irisSilos.Max(s => s.PeakMemoryMb);
                if (viaGrain is not null)
                {
                    await viaGrain.StopAsync();
                }

                await irisClient.StopAsync();
            }
            finally
            {
                irisClient.Dispose();
                foreach (var silo in irisSilos)
                {
                    await silo.DisposeAsync();
                }
            }
        }

        var headline = callers.Contains(16) ? 16 : callers[0];
        PrintRequestTables(request);
        var result = new JsonObject
        {
            ["machine"] = new JsonObject
            {
                ["cores"] = Environment.ProcessorCount,
                ["os"] = RuntimeInformation.OSDescription,
                ["dotnet"] = Environment.Version.ToString(),
                ["date"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["quick"] = quick,
                ["silosPerSystem"] = Silos,
                ["measuredSecondsPerCell"] = duration.TotalSeconds,
                ["measuredSecondsPerStreamCell"] = streamDuration.TotalSeconds,
                ["peakSiloMemoryMb"] = JsonSerializer.SerializeToNode(memory),
            },
            ["workloads"] = new JsonObject
            {
                ["request"] = request.Count > 0 ? RequestNode(request[headline]) : new JsonObject(),
                ["broadcast"] = RequestNode(fanOut["broadcast"]),
                ["publish"] = RequestNode(fanOut["publish"]),
                ["tunnel"] = RequestNode(fanOut["tunnel"]),
            },
            ["requestByCallers"] = new JsonObject(request.Select(p => KeyValuePair.Create(p.Key.ToString(CultureInfo.InvariantCulture), (JsonNode?)RequestNode(p.Value)))),
        };

        var charts = Charts.Write(directory: Path.Combine(Root, "bench", "results"), new Dictionary<string, IReadOnlyDictionary<int, IReadOnlyDictionary<string, Measurement>>>
        {
            ["request"] = request.GetValueOrDefault(headline, []).ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, Measurement>)p.Value),
            ["broadcast"] = fanOut["broadcast"].ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, Measurement>)p.Value),
            ["publish"] = fanOut["publish"].ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, Measurement>)p.Value),
            ["tunnel"] = fanOut["tunnel"].ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, Measurement>)p.Value),
        });
        PrintFanOutTables(fanOut);
        Console.Error.WriteLine($"charts: {string.Join(", ", charts.Select(Path.GetFileName))}");
        var text = result.ToJsonString();
        var directory = Path.Combine(Root, "bench", "results");
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Path.Combine(directory, "latest.json"), result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.Error.WriteLine($"written: {Path.Combine(directory, "latest.json")}");
        if (json)
        {
            Console.WriteLine(text);
        }
    }

    private static JsonObject RequestNode(SortedDictionary<int, Dictionary<string, Measurement>> byPayload)
    {
        var node = new JsonObject();
        foreach (var (payload, systems) in byPayload)
        {
            var cell = new JsonObject();
            foreach (var (system, measurement) in systems)
            {
                cell[system] = JsonSerializer.SerializeToNode(measurement);
            }

            if (systems.TryGetValue("orleans", out var orleans))
            {
                if (systems.TryGetValue("iris", out var iris))
                {
                    cell["irisOverOrleans"] = Math.Round(iris.PerSec / orleans.PerSec, 3);
                }

                if (systems.TryGetValue("irisClusterGrain", out var grain))
                {
                    cell["irisClusterGrainOverOrleans"] = Math.Round(grain.PerSec / orleans.PerSec, 3);
                }
            }

            if (systems.TryGetValue("orleansSpread", out var spread) && systems.TryGetValue("iris", out var irisSpread))
            {
                cell["irisOverOrleansSpread"] = Math.Round(irisSpread.PerSec / spread.PerSec, 3);
            }

            if (systems.TryGetValue("nats", out var nats) && systems.TryGetValue("iris", out var irisAgain))
            {
                cell["irisOverNats"] = Math.Round(irisAgain.PerSec / nats.PerSec, 3);
            }

            node[payload.ToString(CultureInfo.InvariantCulture)] = cell;
        }

        return node;
    }

    private static void PrintRequestTables(SortedDictionary<int, SortedDictionary<int, Dictionary<string, Measurement>>> request)
    {
        foreach (var (callers, byPayload) in request)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine($"request/reply, {callers} callers (req/s, p50 ms, p99 ms, CPU µs per request; ratios of req/s)");
            Console.Error.WriteLine($"{"payload",8} {"system",17} {"req/s",9} {"p50",7} {"p99",7} {"cpu µs",8} {"/orleans",9}");
            foreach (var (payload, systems) in byPayload)
            {
                systems.TryGetValue("orleans", out var orleans);
                foreach (var (system, m) in systems.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    var ratio = orleans is null ? string.Empty : (m.PerSec / orleans.PerSec).ToString("F2", CultureInfo.InvariantCulture);
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{payload,8} {system,17} {m.PerSec,9:F0} {m.P50Ms,7:F2} {m.P99Ms,7:F2} {m.CpuUsPerMsg,8:F0} {ratio,9}"));
                }
            }
        }
    }

    private static int? Option(string[] args, string name) =>
        Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : null;

    private static string FanLine(string workload, string system, int payload, Measurement m) =>
        string.Create(CultureInfo.InvariantCulture, $"  {workload} {system} payload={payload}: {m.PerSec:F0} deliveries/s {m.MbPerSec:F1} MB/s p50={m.P50Ms:F2}ms p99={m.P99Ms:F2}ms cpu={m.CpuUsPerMsg:F1}us");

    private static void PrintFanOutTables(Dictionary<string, SortedDictionary<int, Dictionary<string, Measurement>>> fanOut)
    {
        foreach (var (workload, byPayload) in fanOut)
        {
            if (byPayload.Count == 0)
            {
                continue;
            }

            Console.Error.WriteLine();
            Console.Error.WriteLine(workload == "tunnel"
                ? "tunnel, one way, ordered (messages/s, MB/s, p50 ms, p99 ms, CPU µs per message; ratio to NATS publisher/subscriber pair; Orleans: one-way calls)"
                : $"{workload} to 4 members (deliveries/s across them, MB/s, p50 ms, p99 ms, CPU µs per delivery; ratio to NATS fan-out)");
            Console.Error.WriteLine($"{"payload",8} {"system",8} {"deliv/s",10} {"MB/s",8} {"p50",7} {"p99",7} {"cpu µs",8} {"/nats",6}");
            foreach (var (payload, systems) in byPayload)
            {
                systems.TryGetValue("nats", out var nats);
                foreach (var (system, m) in systems.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    var ratio = nats is null ? string.Empty : (m.PerSec / nats.PerSec).ToString("F2", CultureInfo.InvariantCulture);
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{payload,8} {system,8} {m.PerSec,10:F0} {m.MbPerSec,8:F1} {m.P50Ms,7:F2} {m.P99Ms,7:F2} {m.CpuUsPerMsg,8:F1} {ratio,6}"));
                }
            }
        }
    }

    private static string Line(string system, int callers, int payload, Measurement m) =>
        string.Create(CultureInfo.InvariantCulture, $"  request {system} callers={callers} payload={payload}: {m.PerSec:F0}/s p50={m.P50Ms:F2}ms p99={m.P99Ms:F2}ms cpu={m.CpuUsPerMsg:F0}us");

    private static async Task WaitServedAsync(IIrisClient iris)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await iris.RequestAsync(IrisSide.EchoCluster, [1], TimeSpan.FromSeconds(5));
                return;
            }
            catch (IrisException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Iris.Orleans.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Iris.Orleans.sln not found above " + AppContext.BaseDirectory);
    }
}
