using Iris.Cli.CommandLine;
using Iris.Hosting;
using Iris.Overlay.Discovery;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Orleans.Messaging;
using Orleans.Runtime;

namespace Iris.Cli.Connection;

/// <summary>
/// One Orleans client of an Iris network, set up by <c>UseIris</c> exactly as any Iris client application is: gateways
/// from the silos' beacons (or <c>--gateway</c>), the network key from <c>Iris:Client</c> settings, <c>--key-file</c> or
/// the user's development key. Settings come from environment variables only (no appsettings.json), so that the
/// command behaves the same from any directory.
/// </summary>
internal sealed class IrisConnection : IAsyncDisposable
{
    private static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(5);

    private readonly IHost _host;

    private IrisConnection(IHost host)
    {
        _host = host;
        Iris = host.Services.GetRequiredService<IIrisClient>();
    }

    public IIrisClient Iris { get; }

    /// <summary>The Orleans client's grains: the network's status (<see cref="Status.IrisNetworkStatus"/>).</summary>
    public IGrainFactory Grains => _host.Services.GetRequiredService<IClusterClient>();

    /// <summary>Connects; throws <see cref="CannotConnectException"/> when no gateway of the network can be reached
    /// within the connect timeout, and <see cref="UsageException"/> for settings that cannot work.</summary>
    public static async Task<IrisConnection> OpenAsync(ConnectionSettings settings, CancellationToken cancellationToken)
    {
        var host = Build(settings);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(settings.ConnectTimeout);
        try
        {
            // Beacons come once a second: listening starts now, so that one is heard while the Orleans client builds
            // and starts (about as long), instead of only when Orleans asks for gateways; Orleans' own call to the same
            // method then finds the listener running.
            await host.Services.GetRequiredService<IGatewayListProvider>().InitializeGatewayListProvider().ConfigureAwait(false);
            await host.StartAsync(limit.Token).ConfigureAwait(false);
            return new IrisConnection(host);
        }
        catch (Exception e)
        {
            var explained = cancellationToken.IsCancellationRequested ? null : Explain(e, host.Services.GetRequiredService<IOptions<IrisClientOptions>>(), settings);
            host.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            throw explained!;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var limit = new CancellationTokenSource(StopLimit);
        try
        {
            await _host.StopAsync(limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or OrleansException or TimeoutException or ObjectDisposedException)
        {
            // Leaving quickly matters more than a tidy goodbye: the gateway drops a client that went away.
        }

        _host.Dispose();
    }

    private static IHost Build(ConnectionSettings settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "iris" });
        builder.Configuration.AddEnvironmentVariables();
        builder.Logging.ClearProviders();
        if (settings.Verbose)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Information);
            builder.Logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss.fff ";
            });
            builder.Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        }

        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        builder.UseOrleansClient(client => client.UseIris(options =>
        {
            foreach (var gateway in settings.Gateways)
            {
                options.Gateways.Add(gateway);
            }

            if (settings.KeyFile is not null)
            {
                options.KeyFile = settings.KeyFile;
                options.NetworkKey = null;
            }

            if (settings.DiscoveryPort is { } port)
            {
                options.DiscoveryPort = port;
            }
        }));
        return builder.Build();
    }

    /// <summary>Why connecting failed, in words a user can act on.</summary>
    private static Exception Explain(Exception failure, IOptions<IrisClientOptions> configured, ConnectionSettings settings)
    {
        if (Find<OptionsValidationException>(failure) is { } invalid)
        {
            return new UsageException(invalid.Message);
        }

        if (Find<NetworkKeyException>(failure) is { } key)
        {
            return new UsageException(key.Message);
        }

        if (Find<SiloUnavailableException>(failure) is not null || failure is OperationCanceledException)
        {
            return new CannotConnectException($"Could not connect to the Iris network within {Durations.Describe(settings.ConnectTimeout)}: {Where(configured)}. "
                + "Start a node (dotnet run --project src/Iris.Silo), check that the network key is the nodes' key (Iris__Client__NetworkKey, --key-file, "
                + "by default ~/.iris/network-key), or give more time with --connect-timeout.");
        }

        return new CannotConnectException($"Could not connect to the Iris network: {failure.Message}");
    }

    /// <summary>The first exception of type <typeparamref name="T"/> in <paramref name="failure"/> or its causes.</summary>
    private static T? Find<T>(Exception? failure)
        where T : Exception
    {
        for (; failure is not null; failure = failure.InnerException)
        {
            if (failure is T found)
            {
                return found;
            }

            if (failure is AggregateException { InnerExceptions.Count: > 0 } many && many.InnerExceptions.Select(Find<T>).FirstOrDefault(f => f is not null) is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    private static string Where(IOptions<IrisClientOptions> configured)
    {
        IrisClientOptions options;
        try
        {
            options = configured.Value;
        }
        catch (OptionsValidationException)
        {
            return "no node accepted the connection";
        }

        if (options.Gateways.Count > 0)
        {
            return $"no gateway of {string.Join(", ", options.Gateways)} accepted the connection";
        }

        return options.Scope == DiscoveryScope.Lan
            ? $"no node with this network key was heard on the LAN discovery port {options.DiscoveryPort}, or none accepted the connection"
            : $"no node with this network key was heard on the loopback discovery ports {options.DiscoveryPort}-{options.DiscoveryPort + new DiscoveryOptions().LoopbackPorts - 1}, or none accepted the connection";
    }
}
