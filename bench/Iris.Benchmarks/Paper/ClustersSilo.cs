using System.Diagnostics;
using System.Globalization;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Benchmarks.Paper;

/// <summary>
/// An Iris silo process of the <c>clusters</c> harness (<c>clusters-silo</c>): <c>UseIris</c> as an application embeds
/// it, serving as many cluster names as it is told, each with one echo member. Standard input: <c>register N P</c>
/// registers names <c>c-0</c> … <c>c-(N-1)</c> not yet registered, <c>P</c> at a time, printing <c>PROGRESS n s</c>
/// every tenth and then <c>REGISTERED n seconds=&lt;s&gt;</c>; <c>memory</c> prints <c>MEMORY workingSet=&lt;bytes&gt;
/// heap=&lt;bytes&gt; heapAfterGc=&lt;bytes&gt;</c> (the last after a full, blocking collection).
/// </summary>
internal static class ClustersSilo
{
    public static string Name(int index) => string.Create(CultureInfo.InvariantCulture, $"c-{index}");

    public static async Task RunAsync()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => (console.SingleLine, console.TimestampFormat) = (true, "HH:mm:ss.fff "));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo => silo.UseIris(options =>
        {
            options.SiloPort = PortPicker.AnyFree();
            options.GatewayPort = PortPicker.AnyFree();
        }));
        using var host = builder.Build();
        await host.StartAsync();
        var iris = host.Services.GetRequiredService<IIrisClient>();
        var echo = new Echo();
        var registrations = new List<IAsyncDisposable>();
        Console.WriteLine("READY");
        while (await Console.In.ReadLineAsync() is { } line)
        {
            switch (line.Split(' '))
            {
                case ["register", var count, var parallel]:
                    var target = int.Parse(count, CultureInfo.InvariantCulture);
                    var started = Stopwatch.GetTimestamp();
                    var first = registrations.Count;
                    var step = Math.Max(1, (target - first) / 10);
                    var done = 0;
                    var added = new IAsyncDisposable[Math.Max(0, target - first)];
                    await Parallel.ForEachAsync(
                        Enumerable.Range(first, added.Length),
                        new ParallelOptions { MaxDegreeOfParallelism = int.Parse(parallel, CultureInfo.InvariantCulture) },
                        async (i, cancellationToken) =>
                        {
                            added[i - first] = await iris.RegisterAsync(Name(i), echo, cancellationToken: cancellationToken);
                            if (Interlocked.Increment(ref done) % step == 0)
                            {
                                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"PROGRESS {first + done} {Stopwatch.GetElapsedTime(started).TotalSeconds:F1}"));
                            }
                        });
                    registrations.AddRange(added);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"REGISTERED {registrations.Count} seconds={Stopwatch.GetElapsedTime(started).TotalSeconds:F2}"));
                    break;
                case ["memory"]:
                    var heap = GC.GetTotalMemory(forceFullCollection: false);
                    var afterGc = GC.GetTotalMemory(forceFullCollection: true);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"MEMORY workingSet={Environment.WorkingSet} heap={heap} heapAfterGc={afterGc}"));
                    break;
            }
        }

        await host.StopAsync();
    }

    /// <summary>The member of every name: answers a request with the request.</summary>
    private sealed class Echo : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
