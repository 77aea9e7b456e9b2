using System.Diagnostics;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Runtime;

namespace Iris.Tests.Silo;

/// <summary>An Orleans client with <c>UseIris</c> against real Iris.Silo processes.</summary>
public class ClientTests
{
    [Fact]
    public async Task A_client_finds_the_gateways_from_the_silos_beacons_and_sees_the_whole_cluster()
    {
        var network = new IrisNetwork(44000);
        await using var first = await network.StartSiloAsync(1);
        await using var second = await network.StartSiloAsync(2);
        using var client = await network.StartClientAsync();
        var hosts = await client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        Assert.Equal(2, hosts.Count);
        await client.StopAsync();

        // A client with another network key fails the handshake with the gateway: it never connects (Orleans keeps
        // retrying until the caller gives up), and the silo logs why it refused.
        var gatewayLine = first.Lines.First(l => l.Contains("clients on ", StringComparison.Ordinal));
        var gateway = gatewayLine[(gatewayLine.IndexOf("clients on ", StringComparison.Ordinal) + "clients on ".Length)..].Split(',')[0];
        using var intruder = Host.CreateDefaultBuilder()
            .UseOrleansClient(orleans => orleans.UseIris(options =>
            {
                options.NetworkKey = Convert.ToBase64String(NetworkKey.Generate().Bytes);
                options.Gateways.Add(gateway);
            }))
            .Build();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAnyAsync<Exception>(() => intruder.StartAsync(limit.Token));
        await first.WaitForAsync(
            l => l.Any(x => x.Contains("Orleans connection with", StringComparison.Ordinal) && x.Contains("refused", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10),
            "the refused connection logged");
    }
}

/// <summary>The patterns from an Orleans client, as the Iris.Grains.Abstractions README shows them, against a silo
/// process.</summary>
public class ClientPatternTests
{
    [Fact]
    public async Task A_client_serves_a_cluster_calls_it_receives_its_own_broadcast_and_learns_of_missing_members_at_once()
    {
        var network = new IrisNetwork(45000);
        await using var silo = await network.StartSiloAsync(1);
        using var host = await network.StartClientAsync();
        var iris = host.Services.GetRequiredService<IIrisClient>();
        var grains = host.Services.GetRequiredService<IClusterClient>();

        var echo = new BroadcastCountingEcho();
        await using (await iris.RegisterAsync("echo", echo))
        {
            // The cluster grain's request is sent from this process, as IIrisClient's are (one hop to the member), not
            // by a cluster grain on the gateway's silo: its client span is here, in the caller's trace.
            var spans = new System.Collections.Concurrent.ConcurrentQueue<Activity>();
            using var source = new ActivitySource("Iris.Tests.ClientPatterns");
            using var listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name is "Iris" or "Iris.Tests.ClientPatterns",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = spans.Enqueue,
            };
            ActivitySource.AddActivityListener(listener);
            byte[] reply;
            ActivityTraceId trace;
            using (var call = source.StartActivity("call"))
            {
                trace = call!.TraceId;
                reply = await grains.GetGrain<IClusterGrain>("echo").Request([1, 2, 3], TimeSpan.FromSeconds(5));
            }

            Assert.Equal([1, 2, 3], reply);
            Assert.Contains(spans, s => s.TraceId == trace && s.Source.Name == "Iris" && s.Kind == ActivityKind.Client && s.OperationName == "request echo");
            await grains.GetGrain<IClusterGrain>("echo").Broadcast([9]);
            await Eventually.SettlesAtAsync(() => echo.Broadcasts, 1, "broadcast delivered");
        }

        // A client member keeps answering under sustained load, several requests at a time.
        await using (await iris.RegisterAsync("loaded", new BroadcastCountingEcho()))
        {
            var ok = 0;
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var end = DateTime.UtcNow.AddSeconds(3);
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                while (DateTime.UtcNow < end)
                {
                    try
                    {
                        await iris.RequestAsync("loaded", [1], TimeSpan.FromSeconds(2));
                        Interlocked.Increment(ref ok);
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue(e.GetType().Name + ": " + e.Message);
                    }
                }
            })));
            GC.Collect();
            Assert.True(failures.IsEmpty, $"{ok} ok; failures: {string.Join(" | ", failures.Take(3))}");
            Assert.Equal([5], await iris.RequestAsync("loaded", [5], TimeSpan.FromSeconds(2)));
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<NoMembersException>(() => grains.GetGrain<IClusterGrain>("unknown").Request([], TimeSpan.FromMinutes(5)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}: the caller was left to time out");

        // Once the client's member has left, the cluster has no members either.
        await Task.Delay(MemberDirectoryCacheTime());
        await Assert.ThrowsAsync<NoMembersException>(() => grains.GetGrain<IClusterGrain>("echo").Request([], TimeSpan.FromSeconds(5)));
        await host.StopAsync();
    }

    private sealed class Shout : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                await tunnel.SendAsync(System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(message).ToUpperInvariant()), cancellationToken);
            }
        }
    }

    [Fact]
    public async Task A_client_opens_tunnels_to_a_member_it_serves_and_to_the_silos_echo_member()
    {
        var network = new IrisNetwork(45400);
        await using var silo = await network.StartSiloAsync(1, ("Iris__Silo__EchoCluster", "echo"));
        using var host = await network.StartClientAsync();
        var iris = host.Services.GetRequiredService<IIrisClient>();

        await using (await iris.RegisterAsync("shout", new Shout()))
        {
            await using var tunnel = await iris.OpenTunnelAsync("shout", TimeSpan.FromSeconds(5));
            foreach (var word in new[] { "one", "two", "three" })
            {
                await tunnel.SendAsync(System.Text.Encoding.UTF8.GetBytes(word));
                Assert.Equal(word.ToUpperInvariant(), System.Text.Encoding.UTF8.GetString(await tunnel.ReceiveAsync()));
            }

            await tunnel.CloseAsync();
        }

        // The silo process's echo member sends back what it gets, in order, through the secured connections.
        await using (var echo = await iris.OpenTunnelAsync("echo", TimeSpan.FromSeconds(10)))
        {
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < 2000; i++)
                {
                    await echo.SendAsync(BitConverter.GetBytes(i));
                }
            });
            for (var i = 0; i < 2000; i++)
            {
                Assert.Equal(i, BitConverter.ToInt32(await echo.ReceiveAsync()));
            }

            await sending;
        }

        await Assert.ThrowsAsync<NoMembersException>(() => iris.OpenTunnelAsync("nobody", TimeSpan.FromSeconds(30)));
        await host.StopAsync();
    }

    private static TimeSpan MemberDirectoryCacheTime() => Iris.Balancing.MemberDirectory.CacheTime + TimeSpan.FromMilliseconds(200);
}
