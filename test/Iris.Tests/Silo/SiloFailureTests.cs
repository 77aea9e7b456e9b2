using System.Collections.Concurrent;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Silo;

/// <summary>Killing a silo process while requests flow to echo members hosted by every silo, and tunnels are open to
/// them.</summary>
public class SiloFailureTests
{
    [Fact]
    public async Task Under_request_load_a_killed_silo_costs_only_typed_errors_and_service_continues_and_its_tunnels_fail_typed()
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
            try
            {
                await RunAsync(host, silos);
            }
            catch (Exception e)
            {
                // What the silos logged, with the time each line was read, goes with a failure: a failure seen only
                // under a loaded run's timing is otherwise not explained.
                throw new Xunit.Sdk.XunitException(e + "\n\nThe silos' output:\n" + string.Join("\n----\n", silos.Select(s =>
                    string.Join('\n', s.TimedLines.TakeLast(300).Select(l => $"{l.At:HH:mm:ss.fff} {l.Line}")))));
            }
            finally
            {
                await host.StopAsync();
            }
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    private static async Task RunAsync(IHost host, List<ChildProcess> silos)
    {
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

        // Tunnels to the echo members, spread over the three silos by load, each with a receive waiting.
        var tunnels = new List<ITunnel>();
        for (var i = 0; i < 30; i++)
        {
            tunnels.Add(await iris.OpenTunnelAsync("echo", TimeSpan.FromSeconds(10)));
        }

        var waiting = tunnels.Select(t => t.ReceiveAsync().AsTask()).ToList();

        await Task.Delay(TimeSpan.FromSeconds(3));
        var killedAt = DateTime.UtcNow;
        silos[1].Kill();

        // A tunnel whose member died fails, typed, within the failure-detection time; the others go on echoing.
        var died = 0;
        var lived = 0;
        var why = new List<string>();
        for (var i = 0; i < tunnels.Count; i++)
        {
            try
            {
                await tunnels[i].SendAsync(new[] { (byte)i });
                Assert.Equal([(byte)i], await waiting[i].WaitAsync(TimeSpan.FromSeconds(40)));
                lived++;
            }
            catch (TunnelClosedException e)
            {
                Assert.Equal(TunnelCloseReason.PeerDied, e.Reason);
                why.Add($"{((Iris.Tunnels.TunnelEnd)tunnels[i]).Peer?.Id}: {e.Detail}");
                await Assert.ThrowsAsync<TunnelClosedException>(() => waiting[i].WaitAsync(TimeSpan.FromSeconds(40)));
                died++;
            }
        }

        Assert.True(died > 0 && lived > 0, $"{died} tunnels failed, {lived} went on: the kill should cost some, not all");

        Assert.True(DateTime.UtcNow - killedAt < TimeSpan.FromSeconds(60));

        // Exactly those whose member was on the killed silo failed (once the cluster has declared it dead).
        var management = host.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
        var active = new HashSet<SiloAddress>();
        Exception? lastError = null;
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60); active.Count != 2 && DateTime.UtcNow < deadline;)
        {
            try
            {
                active = (await management.GetHosts(onlyActive: true)).Keys.ToHashSet();
            }
            catch (Exception e) when (e is OrleansException or Iris.Overlay.Records.RecordUnavailableException or Iris.Overlay.Records.RecordTimeoutException)
            {
                // The call went by way of the dead silo, or the membership table's record was being moved off it (a
                // read that meets that fails typed); ask again. A table that stays unreadable fails the test below:
                // the dead silo is then never declared dead.
                lastError = e;
            }

            await Task.Delay(500);
        }

        Assert.True(active.Count == 2, $"the cluster did not declare the killed silo dead within 60 s: {active.Count} active silos; last error: {lastError}");
        var onDead = tunnels.Count(t => !active.Contains(((Iris.Tunnels.TunnelEnd)t).Peer!.Silo!));
        Assert.True(onDead == died, $"{died} tunnels failed, {onDead} had their member on the killed silo: " + string.Join(" | ", why.Distinct()));
        foreach (var tunnel in tunnels)
        {
            await tunnel.DisposeAsync();
        }

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
    }
}
