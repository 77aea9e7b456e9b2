using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Placement;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Iris.Benchmarks;

/// <summary>
/// Tunnel throughput beside its baseline, in one run over the same two silos (in this process, on the overlay
/// membership, connections secured as always): silo A sends a stream of messages to silo B, once through an Iris
/// tunnel to a member hosted on B, once as plain Orleans one-way calls to a grain on B. Each run ends when B has
/// received everything. Message sizes 1 KiB and 64 KiB; each figure is the best of three runs.
/// </summary>
public static class TunnelThroughput
{
    private const int Runs = 3;

    public static async Task RunAsync()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 47000 + (Random.Shared.Next(0, 100) * 16);
        using var a = await StartSiloAsync(key, discovery);
        using var b = await StartSiloAsync(key, discovery);
        var membership = a.Services.GetRequiredService<IClusterMembershipService>();
        while (membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) < 2)
        {
            await Task.Delay(100);
        }

        var sink = new Sink();
        var registration = await b.Services.GetRequiredService<IIrisClient>().RegisterAsync("bench-tunnel", sink);
        var iris = a.Services.GetRequiredService<IIrisClient>();
        var grains = a.Services.GetRequiredService<IGrainFactory>();
        var siloB = b.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress.ToParsableString();

        var rows = new List<object>();
        Console.WriteLine($"{"message",8} {"count",7} {"Orleans msg/s",14} {"tunnel msg/s",13} {"Orleans MB/s",13} {"tunnel MB/s",12} {"ratio",6}");
        foreach (var (size, count) in new[] { (1024, 50_000), (64 * 1024, 2_000) })
        {
            var message = new byte[size];
            Random.Shared.NextBytes(message);
            var orleans = double.MaxValue;
            var tunnel = double.MaxValue;
            for (var run = 0; run < Runs; run++)
            {
                orleans = Math.Min(orleans, await OneWayCallsAsync(grains.GetGrain<ISinkGrain>(siloB), message, count));
                tunnel = Math.Min(tunnel, await TunnelAsync(iris, sink, message, count));
            }

            var megabytes = (double)size * count / 1e6;
            var ratio = orleans / tunnel;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{size,8} {count,7} {count / orleans,14:F0} {count / tunnel,13:F0} {megabytes / orleans,13:F1} {megabytes / tunnel,12:F1} {ratio,6:P0}"));
            rows.Add(new
            {
                messageSize = size, count, orleansMessagesPerSecond = count / orleans, tunnelMessagesPerSecond = count / tunnel,
                orleansMBps = megabytes / orleans, tunnelMBps = megabytes / tunnel, ratio,
            });
        }

        Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
        await File.WriteAllTextAsync(Path.Combine("BenchmarkDotNet.Artifacts", "tunnels.json"), JsonSerializer.Serialize(rows));
        await registration.DisposeAsync();
        await a.StopAsync();
        await b.StopAsync();
    }

    /// <summary>Seconds to push <paramref name="count"/> messages through one tunnel until the member took them all.</summary>
    private static async Task<double> TunnelAsync(IIrisClient iris, Sink sink, byte[] message, int count)
    {
        await using var tunnel = await iris.OpenTunnelAsync("bench-tunnel", TimeSpan.FromSeconds(30));
        var received = sink.Expect(count);
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            await tunnel.SendAsync(message);
        }

        await received;
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>Seconds to push <paramref name="count"/> one-way calls until the grain took them all.</summary>
    private static async Task<double> OneWayCallsAsync(ISinkGrain grain, byte[] message, int count)
    {
        await grain.Reset();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            await grain.Push(message);
        }

        while (await grain.Count() < count)
        {
            await Task.Delay(1);
        }

        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static async Task<IHost> StartSiloAsync(string key, int discovery)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = key,
            ["Iris:Network:Discovery:Port"] = discovery.ToString(CultureInfo.InvariantCulture),
        });
        builder.UseOrleans(silo => silo.UseIris(options =>
        {
            options.SiloPort = PortPicker.AnyFree();
            options.GatewayPort = PortPicker.AnyFree();
        }));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>The tunnel's receiving member: takes every message, and tells when it has the expected number.</summary>
    private sealed class Sink : IClusterHandler
    {
        private TaskCompletionSource _done = new();
        private int _expected;

        public Task Expect(int count)
        {
            _expected = count;
            _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _done.Task;
        }

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
        {
            var received = 0;
            await foreach (var _ in tunnel.ReadAllAsync(cancellationToken))
            {
                if (++received == _expected)
                {
                    _done.TrySetResult();
                }
            }
        }
    }
}

/// <summary>The baseline's receiver: a grain on silo B counting what one-way calls bring.</summary>
public interface ISinkGrain : IGrainWithStringKey
{
    [OneWay]
    Task Push(byte[] message);

    Task<int> Count();

    Task Reset();
}

[SiloPinned]
internal sealed class SinkGrain : Grain, ISinkGrain
{
    private int _count;

    public Task Push(byte[] message)
    {
        _count++;
        return Task.CompletedTask;
    }

    public Task<int> Count() => Task.FromResult(_count);

    public Task Reset()
    {
        _count = 0;
        return Task.CompletedTask;
    }
}
