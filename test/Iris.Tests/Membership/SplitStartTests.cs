using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Iris.Hosting;
using Iris.Overlay;
using Iris.Overlay.Security;
using Iris.Ring;
using Iris.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Iris.Tests.Membership;

/// <summary>
/// Two silos that start apart: the second hears no beacon while it waits (here: it waits not at all, and beacons come
/// every 5 s), so it starts a ring of its own and its silo creates a membership table there. The beacons then bring the
/// rings together. The silos must end up in one Orleans cluster.
/// </summary>
public sealed class SplitStartTests(ITestOutputHelper output)
{
    private static readonly NodeKey TableKey = NodeKey.FromName("iris/orleans-membership/iris");

    [Fact]
    public Task Silos_whose_rings_formed_apart_end_up_in_one_orleans_cluster() => RunAsync(third: false);

    /// <summary>As above, and a third silo starts after the rings merged: it joins the table the ring's root holds, whose
    /// version then passes the other table's.</summary>
    [Fact]
    public Task Silos_whose_rings_formed_apart_and_a_third_that_joins_later_end_up_in_one_orleans_cluster() => RunAsync(third: true);

    private async Task RunAsync(bool third)
    {
        var clock = Stopwatch.StartNew();
        var log = new ConcurrentQueue<string>();
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 52000 + (Random.Shared.Next(0, 100) * 16);
        var silos = new List<IHost>();
        try
        {
            var a = await StartSiloAsync("A", key, discovery, discoveryWait: TimeSpan.FromSeconds(2), log, clock);
            silos.Add(a);
            await Eventually.HoldsAsync(() => Active(a).Count == 1, "A active", TimeSpan.FromSeconds(60));
            log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} test: A active, starting B");
            silos.Add(await StartSiloAsync("B", key, discovery, discoveryWait: TimeSpan.Zero, log, clock));
            log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} test: B started");
            if (third)
            {
                await Eventually.HoldsAsync(() => Leaves(silos[0]) == 1 && Leaves(silos[1]) == 1, "rings merged", TimeSpan.FromSeconds(30));
                log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} test: rings merged, starting C");

                // C listens long enough to hear a ready beacon, and joins the merged ring.
                silos.Add(await StartSiloAsync("C", key, discovery, discoveryWait: TimeSpan.FromSeconds(12), log, clock));
                log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} test: C started");
            }

            var merged = false;
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(120);
            var lastSample = TimeSpan.FromSeconds(-10);
            while (clock.Elapsed < deadline)
            {
                if (clock.Elapsed - lastSample >= TimeSpan.FromSeconds(5))
                {
                    lastSample = clock.Elapsed;
                    for (var i = 0; i < silos.Count; i++)
                    {
                        log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} sample {(char)('A' + i)}: {Describe(silos[i])}");
                    }
                }

                if (silos.All(s => Active(s).Count == silos.Count))
                {
                    merged = true;
                    log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} test: every silo sees {silos.Count} active");
                    break;
                }

                await Task.Delay(200);
            }

            for (var i = 0; i < silos.Count; i++)
            {
                log.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} final {(char)('A' + i)}: {Describe(silos[i])}");
            }

            Assert.True(merged, $"the {silos.Count} silos did not become one Orleans cluster within 120 s (see the output)");
        }
        finally
        {
            foreach (var line in log)
            {
                output.WriteLine(line);
            }

            foreach (var silo in Enumerable.Reverse(silos))
            {
                try
                {
                    await silo.StopAsync();
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException)
                {
                    // Stopped already (declared dead).
                }

                silo.Dispose();
            }
        }
    }

    private static int Leaves(IHost silo) =>
        silo.Services.GetRequiredService<IrisOverlay>().Host?.Node is { } node ? node.GetLeafSet().Clockwise.Concat(node.GetLeafSet().CounterClockwise).Distinct().Count() : 0;

    private static List<SiloAddress> Active(IHost silo)
    {
        try
        {
            return [.. silo.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values
                .Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress)];
        }
        catch (ObjectDisposedException)
        {
            return [];
        }
    }

    /// <summary>The silo's view: its Orleans membership snapshot, its overlay node's leaf set, and its acceptor state of
    /// the membership record.</summary>
    private static string Describe(IHost silo)
    {
        try
        {
            var snapshot = silo.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot;
            var overlay = silo.Services.GetRequiredService<IrisOverlay>();
            var node = overlay.Host?.Node;
            var leaves = node is null ? "-" : string.Join(",", node.GetLeafSet().Clockwise.Concat(node.GetLeafSet().CounterClockwise).Select(h => h.Key.ToString()[..6]).Distinct());
            var records = overlay.GetRecordsAsync(CancellationToken.None).Result;
            var acceptor = records.AcceptorState(TableKey) is { } state
                ? $"epoch {state.Configuration.Epoch} [{string.Join(",", state.Configuration.Members.Select(m => m.Key.ToString()[..6]))}] v{state.Value.Version}"
                : "none";
#pragma warning disable CS0618 // OverlayMembershipTable implements ReadAll.
            var read = silo.Services.GetRequiredService<IMembershipTable>().ReadAll().Result;
#pragma warning restore CS0618
            return $"node {node?.Self.Key.ToString()[..6]} root-of-table={node?.IsRootFor(TableKey)} leaves [{leaves}] acceptor {acceptor} | "
                + $"snapshot v{snapshot.Version}: {string.Join("; ", snapshot.Members.Values.Select(m => $"{m.SiloAddress} {m.Status}"))} | "
                + $"reads table v{read.Version.Version}: {string.Join("; ", read.Members.Select(m => $"{m.Item1.SiloAddress} {m.Item1.Status}"))}";
        }
        catch (Exception e) when (e is ObjectDisposedException or AggregateException or InvalidOperationException)
        {
            return "(stopped: " + e.GetType().Name + ")";
        }
    }

    private static async Task<IHost> StartSiloAsync(string name, string key, int discoveryPort, TimeSpan discoveryWait, ConcurrentQueue<string> log, Stopwatch clock)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddProvider(new QueueLoggerProvider(name, log, clock));
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = key,
            ["Iris:Network:Discovery:Port"] = discoveryPort.ToString(CultureInfo.InvariantCulture),

            // Beacons every 5 s: the second silo's ring and membership table are made before it hears the first.
            ["Iris:Network:Discovery:BeaconInterval"] = "00:00:05",
            ["Iris:Overlay:DiscoveryWait"] = discoveryWait.ToString("c", CultureInfo.InvariantCulture),
        });
        // A silo declared dead stops its host (as Iris.Silo's do) instead of ending the test process.
        builder.UseOrleans(silo => silo.UseIris(options =>
        {
            options.SiloPort = PortPicker.AnyFree();
            options.GatewayPort = PortPicker.AnyFree();
        }).StopWhenDeclaredDead());
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>Log lines of Iris and of Orleans' membership, with the time since the test started and the silo's name.</summary>
    private sealed class QueueLoggerProvider(string name, ConcurrentQueue<string> lines, Stopwatch clock) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new QueueLogger(name, categoryName, lines, clock);

        public void Dispose()
        {
        }

        private sealed class QueueLogger(string name, string category, ConcurrentQueue<string> lines, Stopwatch clock) : ILogger
        {
            private readonly bool _wanted = category.StartsWith("Iris", StringComparison.Ordinal) || category.Contains("Membership", StringComparison.Ordinal);

            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning || (_wanted && logLevel >= LogLevel.Information);

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    var text = formatter(state, exception);
                    lines.Enqueue($"{clock.Elapsed.TotalSeconds,7:F2} {name} {logLevel} {category.Split('.')[^1]}: {(text.Length > 400 ? text[..400] + "…" : text)}{(exception is null ? string.Empty : " | " + exception.GetType().Name + ": " + exception.Message)}");
                }
            }
        }
    }
}
