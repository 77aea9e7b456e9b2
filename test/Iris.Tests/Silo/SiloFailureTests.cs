using System.Collections.Concurrent;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Silo;

/// <summary>Killing a silo process while requests flow to echo members hosted by every silo.</summary>
public class SiloFailureTests
{
    [Fact]
    public async Task Under_request_load_a_killed_silo_costs_only_typed_errors_and_service_continues()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var port = 47000 + (Random.Shared.Next(0, 300) * 16);
        var settings = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Network__Key"] = key,
            ["Iris__Network__Discovery__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Iris__Silo__EchoCluster"] = "echo",
        };
        var dll = RepositoryPaths.Program("src", "Iris.Silo");
        var silos = new List<ChildProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                silos.Add(ChildProcess.Start("dotnet", [dll], settings));
                await silos[i].WaitForAsync(l => l.Any(x => x.Contains($"has {i + 1} active silos", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), $"{i + 1} silos");
            }

            using var host = Host.CreateDefaultBuilder()
                .UseOrleansClient(client => client.UseIris(options =>
                {
                    options.NetworkKey = key;
                    options.DiscoveryPort = port;
                }))
                .Build();
            await host.StartAsync();
            var iris = host.Services.GetRequiredService<IIrisClient>();

            var outcomes = new ConcurrentQueue<(DateTime At, string Outcome)>();
            var unexpected = new ConcurrentQueue<Exception>();
            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await iris.RequestAsync("echo", [1], TimeSpan.FromSeconds(3));
                        outcomes.Enqueue((DateTime.UtcNow, "ok"));
                    }
                    catch (IrisException e)
                    {
                        outcomes.Enqueue((DateTime.UtcNow, e.GetType().Name));
                    }
                    catch (Exception e)
                    {
                        unexpected.Enqueue(e);
                        await Task.Delay(100);
                    }
                }
            })).ToList();

            await Task.Delay(TimeSpan.FromSeconds(3));
            var killedAt = DateTime.UtcNow;
            silos[1].Kill();

            // Service continues: requests succeed again once the silo's death is known, well within a minute.
            var recovered = false;
            for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60); DateTime.UtcNow < deadline && !recovered;)
            {
                await Task.Delay(500);
                recovered = outcomes.Count(o => o.At > DateTime.UtcNow.AddSeconds(-2) && o.Outcome == "ok") > 20
                    && DateTime.UtcNow - killedAt > TimeSpan.FromSeconds(5);
            }

            await stop.CancelAsync();
            await Task.WhenAll(workers);
            for (var i = 0; i < silos.Count; i++)
            {
                File.WriteAllText($"/tmp/silo-failure-{i}.log", silos[i].Output);
            }

            File.WriteAllText("/tmp/silo-failure-outcomes.log", string.Join("\n", outcomes.Select(o => $"{(o.At - killedAt).TotalSeconds:F1} {o.Outcome}")));
            Assert.True(recovered, "requests did not succeed again after the kill: " + string.Join(", ", outcomes.GroupBy(o => o.Outcome).Select(g => $"{g.Key}={g.Count()}")));
            Assert.True(unexpected.IsEmpty, "untyped errors: " + string.Join(" | ", unexpected.Take(5).Select(e => $"{e.GetType().Name}: {e.Message}")));
            Assert.True(outcomes.Count(o => o.Outcome == "ok") > 100);
            await host.StopAsync();
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }
}
