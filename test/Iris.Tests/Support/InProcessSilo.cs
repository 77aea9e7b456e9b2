using Iris.Hosting;
using Iris.Relay;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Tests.Support;

/// <summary>An Iris silo hosted in the test process: development mode, free loopback ports, the given network key and
/// discovery port.</summary>
internal static class InProcessSilo
{
    /// <summary>Starts a silo; <paramref name="services"/> registers what it should use instead of the defaults (a
    /// skewed clock, say) before Iris does; <paramref name="echoCluster"/> is served by an echo member; with
    /// <paramref name="relay"/> the silo serves the relay protocol on a free loopback port (32 MiB queued per connection
    /// and direction, 16 MiB messages), with tunnels carrying up to 64 MiB as Iris.Silo's do; <paramref name="silo"/>
    /// configures the silo further; <paramref name="log"/> keeps what it logs. A silo declared dead stops its host, as
    /// Iris.Silo's does (Orleans' own handler would end the test process).</summary>
    public static async Task<IHost> StartAsync(
        string key, int discoveryPort, Action<IServiceCollection>? services = null, string? echoCluster = null, bool relay = false, Action<ISiloBuilder>? silo = null,
        ILoggerProvider? log = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        if (log is not null)
        {
            builder.Logging.AddProvider(log).SetMinimumLevel(LogLevel.Information);
        }

        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = key,
            ["Iris:Network:Discovery:Port"] = discoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        if (relay)
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Iris:Tunnels:MaxMessageBytes"] = (64 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        services?.Invoke(builder.Services);
        builder.UseOrleans(orleans =>
        {
            orleans.UseIris(options =>
            {
                options.SiloPort = PortPicker.AnyFree();
                options.GatewayPort = PortPicker.AnyFree();
                options.EchoCluster = echoCluster;
            }).StopWhenDeclaredDead();
            silo?.Invoke(orleans);
        });
        if (relay)
        {
            // Queues small enough that a client that does not read overflows them quickly.
            builder.Services.AddIrisRelay(options => (options.Port, options.MaxQueuedBytes, options.MaxMessageBytes) = (0, 32L * 1024 * 1024, 16 * 1024 * 1024));
        }

        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
