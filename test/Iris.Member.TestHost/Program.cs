using Iris;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Usage: Iris.Member.TestHost <cluster>, with the network in Iris:Client settings (environment variables
// Iris__Client__NetworkKey, Iris__Client__DiscoveryPort or Iris__Client__Gateways__0). Registers an echo member of
// <cluster> and prints "READY"; on the input line "leave" it leaves the cluster and prints "LEFT <requests served>";
// it stops when its input closes.
// Iris.Member.TestHost <cluster> --audit: the same member, which also prints "RAN <request as text>" for every
// request it runs, so that a test can count how often each request ran across all members.
// Iris.Member.TestHost --call <cluster>: a caller instead. Prints "READY", then sends requests to <cluster> without
// end, each its own text "<process id>-<number>" (numbers from 0), and prints one line a second,
// "CALLS ok=<n> failed=<n> [<error>=<n> ...]" for that second, "FAILED <request> <error>" for each failed request and
// "WRONG <request>" for a reply that is not the request. On the input line "hosts" it prints the silos of the
// membership table as its gateway reads it, "HOST <silo> <status> <suspecters>" each, then "HOSTS END"; on
// "activations", the activations of Iris' keyed grains, "ACTIVATION <grain type> <grain id> <silo>" each, then
// "ACTIVATIONS END"; on "stop", it sends no more requests, waits for the one under way and prints
// "STOPPED sent=<n>". The first error of each type that is not an IrisException is printed whole, "UNTYPED ...".
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
    var echo = new CountingEcho(audit: args.Contains("--audit"));
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

internal sealed class CountingEcho(bool audit) : IClusterHandler
{
    private int _served;

    public int Served => Volatile.Read(ref _served);

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _served);
        if (audit)
        {
            Console.WriteLine($"RAN {System.Text.Encoding.UTF8.GetString(request)}");
        }

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
        using var stopSending = new CancellationTokenSource();
        var counts = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var sent = 0;
        var caller = Task.Run(async () =>
        {
            // A request under way when sending stops is let finish, so that every request sent has an outcome.
            while (!stopSending.IsCancellationRequested)
            {
                var id = $"{Environment.ProcessId}-{sent++}";
                var request = System.Text.Encoding.UTF8.GetBytes(id);
                string outcome;
                try
                {
                    var reply = await iris.RequestAsync(cluster, request, TimeSpan.FromSeconds(3), stop.Token);
                    if (!reply.AsSpan().SequenceEqual(request))
                    {
                        Console.WriteLine($"WRONG {id}");
                    }

                    outcome = "ok";
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    outcome = e.GetType().Name;
                    Console.WriteLine($"FAILED {id} {outcome}");
                    if (e is not IrisException && reported.Add(outcome))
                    {
                        // An error that is not one of Iris' own: say where it came from, once per type.
                        Console.WriteLine($"UNTYPED {e.ToString().ReplaceLineEndings(" | ")}");
                    }
                }

                counts.AddOrUpdate(outcome, 1, (_, n) => n + 1);
                await Task.Delay(outcome == "ok" ? 50 : 100, CancellationToken.None);
            }

            if (stop.IsCancellationRequested)
            {
                return;
            }

            Console.WriteLine($"STOPPED sent={sent}");
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
            if (line == "stop")
            {
                await stopSending.CancelAsync();
            }
            else if (line == "activations")
            {
                try
                {
                    var keyed = (await orleans.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics())
                        .Where(a => a.GrainType.Contains("Rendezvous", StringComparison.Ordinal) || a.GrainType.Contains("MemberHost", StringComparison.Ordinal));
                    foreach (var activation in keyed)
                    {
                        Console.WriteLine($"ACTIVATION {activation.GrainType} {activation.GrainId} {activation.SiloAddress.ToParsableString()}");
                    }

                    Console.WriteLine("ACTIVATIONS END");
                }
                catch (Exception e)
                {
                    Console.WriteLine($"ACTIVATIONS FAILED {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                }
            }
            else if (line == "hosts")
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

        await stopSending.CancelAsync();
        await stop.CancelAsync();
        await caller;
        await report.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
