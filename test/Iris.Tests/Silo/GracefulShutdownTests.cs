using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Iris.Hosting;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Tests.Silo;

/// <summary>
/// A node stopped with SIGTERM (as a supervisor stops it; Ctrl-C is the same): while another member of its cluster is
/// alive not one request fails, the tunnels its member served close with a reason, it leaves the ring, and the process
/// exits cleanly within a bounded time. Real Iris.Silo processes and an Orleans client.
/// </summary>
public class GracefulShutdownTests
{
    private const string Cluster = "graceful";

    private static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_silo_stopped_under_load_fails_no_request_closes_its_tunnels_with_a_reason_and_leaves_the_ring()
    {
        var network = new IrisNetwork(50000);
        (string, string)[] settings = [("Iris__Silo__EchoCluster", Cluster), ("Iris__Relay__Enabled", "false"), ("Logging__Console__DisableColors", "true")];
        var httpB = PortPicker.AnyFree();
        await using var a = await network.StartSiloAsync(1, [.. settings, ("Iris__Http__Enabled", "false")]);
        using var client = await network.StartClientAsync();
        var iris = client.Services.GetRequiredService<IIrisClient>();

        // While A's member is the only one, every tunnel is served there.
        var tunnels = new List<ITunnel>();
        for (var i = 0; i < 4; i++)
        {
            var tunnel = await iris.OpenTunnelAsync(Cluster, TimeSpan.FromSeconds(30));
            await tunnel.SendAsync(new byte[] { (byte)i });
            Assert.Equal([(byte)i], await tunnel.ReceiveAsync());
            tunnels.Add(tunnel);
        }

        // B joins with a member of its own; once every split of the name lists both processes, A may go.
        await using var b = await network.StartSiloAsync(2, [.. settings, ("Iris__Http__Port", httpB.ToString(CultureInfo.InvariantCulture))]);
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpB}/"), Timeout = TimeSpan.FromSeconds(10) })
        {
            await Eventually.HoldsAsync(
                async () =>
                {
                    using var response = await http.GetAsync("iris/api/status");
                    if (!response.IsSuccessStatusCode)
                    {
                        return false;
                    }

                    var status = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                    return status.GetProperty("silos").EnumerateArray()
                        .SelectMany(s => s.GetProperty("rendezvous").EnumerateArray())
                        .Count(r => r.GetProperty("name").GetString() == Cluster && r.GetProperty("processes").GetArrayLength() == 2) == 4;
                },
                "every split of the cluster listing both silos' members",
                TimeSpan.FromSeconds(60));
        }

        // Requests from 8 callers, before, during and after A's stop.
        var failures = new ConcurrentQueue<string>();
        long succeeded = 0;
        using var stop = new CancellationTokenSource();
        var callers = Enumerable.Range(0, 8).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    byte[] request = [(byte)caller, (byte)i];
                    Assert.Equal(request, await iris.RequestAsync(Cluster, request, TimeSpan.FromSeconds(10)));
                    Interlocked.Increment(ref succeeded);
                }
                catch (Exception e)
                {
                    failures.Enqueue($"{e.GetType().Name}: {e.Message}");
                }
            }
        })).ToArray();
        await Eventually.HoldsAsync(() => Interlocked.Read(ref succeeded) > 200, "requests flowing");

        var stopping = Stopwatch.StartNew();
        a.Interrupt();
        await a.WaitForExitAsync(StopLimit);
        var stopTime = stopping.Elapsed;
        Assert.True(a.ExitCode == 0, $"exit code {a.ExitCode}\n{a.Output}");
        var before = Interlocked.Read(ref succeeded);
        await Eventually.HoldsAsync(() => Interlocked.Read(ref succeeded) > before + 200, "requests flowing after the stop, to B's member");
        await stop.CancelAsync();
        await Task.WhenAll(callers);
        Assert.True(failures.IsEmpty, $"{failures.Count} of {succeeded + failures.Count} requests failed, e.g. {string.Join("; ", failures.Distinct().Take(5))}");

        // Every tunnel A's member served was closed with the reason that says A stopped, not a silence taken for a death.
        foreach (var tunnel in tunnels)
        {
            var closed = await Assert.ThrowsAsync<TunnelClosedException>(async () => await tunnel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.True(closed.Reason == TunnelCloseReason.PeerStopped, $"closed because {closed.Reason}: {closed.Message}");
            await tunnel.DisposeAsync();
        }

        // A left the ring: B's overlay says its neighbour left (a leave, not a failure detected).
        await b.WaitForAsync(l => l.Any(x => x.Contains("Ring neighbour", StringComparison.Ordinal) && x.Contains("left", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "B seeing A leave the ring");
        Assert.True(stopTime < StopLimit, $"A took {stopTime} to stop");
    }
}
