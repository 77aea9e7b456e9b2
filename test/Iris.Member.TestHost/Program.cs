using Iris;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Usage: Iris.Member.TestHost <cluster>, with the network in Iris:Client settings (environment variables
// Iris__Client__NetworkKey, Iris__Client__DiscoveryPort or Iris__Client__Gateways__0). Registers an echo member of
// <cluster> and prints "READY"; on the input line "leave" it leaves the cluster and prints "LEFT <requests served>";
// it stops when its input closes.
// Iris.Member.TestHost --call <cluster>: a caller instead. Prints "READY", then sends requests to <cluster> without
// end and prints one line a second, "CALLS ok=<n> failed=<n> [<error>=<n> ...]" for that second; on the input line
// "hosts" it prints the silos of the membership table as its gateway reads it, "HOST <silo> <status> <suspecters>"
// each, then "HOSTS END". The first error of each type that is not an IrisException is printed whole, "UNTYPED ...".
// It stops when its input closes.
var builder = Host.CreateApplicationBuilder(args);
builder.UseOrleansClient(client => client.UseIris());
using var host = builder.Build();
await host.StartAsync();

var iris = host.Services.GetRequiredService<IIrisClient>();
if (args[0] == "--call")
{
    await Caller.RunAsync(iris, host.Services.GetRequiredService<IClusterClient>(), args[1]);
}
else
{
    var echo = new CountingEcho();
    var registration = await iris.RegisterAsync(args[0], echo);
    Console.WriteLine("READY");
    while (await Console.In.ReadLineAsync() is { } line)
    {
        if (line == "leave")
        {
            await registration.DisposeAsync();
            Console.WriteLine($"LEFT {echo.Served}");
        }
    }
}

await host.StopAsync();

internal sealed class CountingEcho : IClusterHandler
{
    private int _served;

    public int Served => Volatile.Read(ref _served);

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _served);
        return Task.FromResult(request);
    }

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Steady request load (one request at a time, about 20 a second at most) and a reader of the membership
/// table, for the partition tests.</summary>
internal static class Caller
{
    public static async Task RunAsync(IIrisClient iris, IClusterClient orleans, string cluster)
    {
        using var stop = new CancellationTokenSource();
        var counts = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var caller = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                string outcome;
                try
                {
                    await iris.RequestAsync(cluster, [1, 2, 3], TimeSpan.FromSeconds(3), stop.Token);
                    outcome = "ok";
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    outcome = e.GetType().Name;
                    if (e is not IrisException && reported.Add(outcome))
                    {
                        // An error that is not one of Iris' own: say where it came from, once per type.
                        Console.WriteLine($"UNTYPED {e.ToString().ReplaceLineEndings(" | ")}");
                    }
                }

                counts.AddOrUpdate(outcome, 1, (_, n) => n + 1);
                await Task.Delay(outcome == "ok" ? 50 : 100, CancellationToken.None);
            }
        });

        var report = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
            {
                var second = new SortedDictionary<string, int>(StringComparer.Ordinal);
                foreach (var key in counts.Keys)
                {
                    if (counts.TryRemove(key, out var n))
                    {
                        second[key] = n;
                    }
                }

                second.TryGetValue("ok", out var ok);
                var failures = second.Where(p => p.Key != "ok").ToList();
                Console.WriteLine($"CALLS ok={ok} failed={failures.Sum(p => p.Value)}{string.Concat(failures.Select(p => $" {p.Key}={p.Value}"))}");
            }
        });

        Console.WriteLine("READY");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            if (line == "hosts")
            {
                try
                {
                    foreach (var entry in await orleans.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: false))
                    {
                        var suspecters = entry.SuspectTimes is { Count: > 0 } votes ? string.Join(",", votes.Select(v => v.Item1.ToParsableString())) : "-";
                        Console.WriteLine($"HOST {entry.SiloAddress.ToParsableString()} {entry.Status} {suspecters}");
                    }

                    Console.WriteLine("HOSTS END");
                }
                catch (Exception e)
                {
                    Console.WriteLine($"HOSTS FAILED {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                }
            }
        }

        await stop.CancelAsync();
        await caller;
        await report.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
