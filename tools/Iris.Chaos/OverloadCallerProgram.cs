using System.Globalization;
using System.Text.Json;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Chaos;

/// <summary>
/// <c>Iris.Chaos overload-callers &lt;file&gt; &lt;timeout-ms&gt; &lt;seconds&gt; &lt;cluster&gt;=&lt;rate&gt;…</c>: an
/// Orleans client process, apart from the runner's, that overloads the <see cref="OverloadClusters"/> (the callers of
/// an overloaded service are other services, with connections of their own). It warms up with one request to each,
/// prints <c>READY</c>, starts an <see cref="OverloadLoad"/> per cluster on the line <c>START</c>, stops sending on
/// <c>STOP</c>, waits for every request's outcome and prints <c>RESULT</c>, the number of the round (1, 2, …) and the
/// outcomes as JSON, with the calls its client made meanwhile (<see cref="CallCounts"/>); then waits for the next
/// <c>START</c>. The ids of the
/// requests refused as overloaded go to &lt;file&gt;. The network comes from the environment, as for a member.
/// </summary>
internal static class OverloadCallerProgram
{
    public const string Result = "RESULT ";

    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is not [var file, var timeoutMs, var seconds, .. var clusters] || clusters.Length == 0)
        {
            await Console.Error.WriteLineAsync("usage: Iris.Chaos overload-callers <file> <timeout-ms> <seconds> <cluster>=<rate>...").ConfigureAwait(false);
            return 2;
        }

        var timeout = TimeSpan.FromMilliseconds(int.Parse(timeoutMs, CultureInfo.InvariantCulture));
        var loads = clusters.Select(c => c.Split('=')).Select(c => (Cluster: OverloadClusters.Find(c[0]), Rate: double.Parse(c[1], CultureInfo.InvariantCulture))).ToArray();

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var calls = new CallCounts();
        builder.UseOrleansClient(client => client.UseIris().AddOutgoingGrainCallFilter(calls));
        using var host = builder.Build();
        await host.StartAsync().ConfigureAwait(false);
        var iris = host.Services.GetRequiredService<IIrisClient>();
        foreach (var (cluster, _) in loads)
        {
            await WarmUpAsync(iris, cluster.Name).ConfigureAwait(false);
        }

        Console.WriteLine("READY");
        using var refused = new ExecutionFile(file);
        for (var round = 1; await ReadUntilAsync("START").ConfigureAwait(false); round++)
        {
            var clock = new RunClock(TimeProvider.System);
            var running = loads.Select(l => new OverloadLoad(iris, l.Cluster, l.Rate, timeout, clock, int.Parse(seconds, CultureInfo.InvariantCulture), refused)).ToArray();
            using var stop = new CancellationTokenSource();
            calls.Start();
            var sending = Task.Run(() => OverloadLoad.RunAsync(running, stop.Token), CancellationToken.None);
            await ReadUntilAsync("STOP").ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
            await sending.ConfigureAwait(false);
            var result = new OverloadCallerResult([.. running.Select(l => l.Result())], calls.Snapshot());
            Console.WriteLine($"{Result}{round} {JsonSerializer.Serialize(result, Json)}");
        }

        await host.StopAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>Reads standard input until the line <paramref name="command"/> (true) or its end (false).</summary>
    private static async Task<bool> ReadUntilAsync(string? command)
    {
        while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            if (line == command)
            {
                return true;
            }
        }

        return false;
    }

    private static async Task WarmUpAsync(IIrisClient iris, string cluster)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await iris.RequestAsync(cluster, Ids.NewPayload(out _), TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                return;
            }
            catch (IrisException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
    }
}
