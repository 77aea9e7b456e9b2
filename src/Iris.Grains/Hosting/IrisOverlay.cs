using Iris.Overlay.Hosting;
using Iris.Overlay.Records;
using Iris.Overlay.Security;
using Iris.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Iris.Hosting;

/// <summary>
/// This silo's overlay node and the services on it, started once, on first use: by the hosted service when the host
/// starts, or earlier by Orleans' membership table, which lives on the ring and so needs the node in a ring first.
/// </summary>
internal sealed partial class IrisOverlay(
    IConfiguration configuration, IHostEnvironment environment, ILoggerFactory loggers, NetworkKeyProvider keys, IOptions<EndpointOptions>? endpoints = null,
    IServiceProvider? services = null)
    : IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger("Iris.Hosting.Overlay");
    private readonly SemaphoreSlim _gate = new(1, 1);
    private OverlayHost? _host;
    private RecordStore? _records;
    private RootLocator? _locator;

    /// <summary>The running overlay, once started.</summary>
    public OverlayHost? Host => _host;

    /// <summary>Starts the overlay node if it is not running yet.</summary>
    public async Task<OverlayHost> StartAsync(CancellationToken cancellationToken)
    {
        if (_host is { } running)
        {
            return running;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_host is null)
            {
                var development = environment.IsDevelopment();
                var networkKey = keys.Key;
                LogKey(_logger, networkKey.Fingerprint, configuration["Iris:Network:Key"] is { Length: > 0 } ? "Iris:Network:Key"
                    : configuration["Iris:Network:KeyFile"] ?? NetworkKeys.DevelopmentPath(configuration));
                var options = OverlayLifecycle.Bind(configuration);
                if (endpoints?.Value is { GatewayPort: > 0 } orleans)
                {
                    // Beacons offer this silo's gateway, so clients find it with no configuration either.
                    options.Gateway = $"{orleans.AdvertisedIPAddress ?? System.Net.IPAddress.Loopback}:{orleans.GatewayPort}";
                }

                var host = await OverlayHost.StartAsync(options, networkKey, development, loggers).ConfigureAwait(false);
                host.NeighbourJoined += node => LogNeighbourJoined(_logger, node.Key, node.Address);
                host.NeighbourLeft += node => LogNeighbourLeft(_logger, node.Key, node.Address);
                _records = new RecordStore(host.Node, host.Timers);

                // The root of a key answers with this silo's Orleans address: rendezvous grains are placed by it.
                var silo = services?.GetService(typeof(Orleans.Runtime.ILocalSiloDetails)) as Orleans.Runtime.ILocalSiloDetails;
                _locator = new RootLocator(host.Node, host.Timers, silo?.SiloAddress.ToParsableString() ?? string.Empty);
                _host = host;
            }

            return _host;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The replicated records of the ring, once this node is in a ring.</summary>
    public async Task<RecordStore> GetRecordsAsync(CancellationToken cancellationToken)
    {
        var host = await StartAsync(cancellationToken).ConfigureAwait(false);
        await host.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false);
        return _records!;
    }

    /// <summary>Finds the root of a key and what it says it is, once this node is in a ring.</summary>
    public async Task<RootLocator> GetLocatorAsync(CancellationToken cancellationToken)
    {
        await GetRecordsAsync(cancellationToken).ConfigureAwait(false);
        return _locator!;
    }

    public async ValueTask DisposeAsync()
    {
        _records?.Dispose();
        _locator?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} joined")]
    private static partial void LogNeighbourJoined(ILogger logger, Overlay.NodeKey key, Overlay.Transport.NodeAddress address);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} left")]
    private static partial void LogNeighbourLeft(ILogger logger, Overlay.NodeKey key, Overlay.Transport.NodeAddress address);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Network key {Fingerprint} from {Source}")]
    private static partial void LogKey(ILogger logger, string fingerprint, string source);
}
