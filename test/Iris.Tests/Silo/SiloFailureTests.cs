using System.Collections.Concurrent;
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
        var network = new IrisNetwork(47000);
        var silos = new List<ChildProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                silos.Add(await network.StartSiloAsync(i + 1, ("Iris__Silo__EchoCluster", "echo")));
            }

            using var host = await network.StartClientAsync();
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
