using Iris.Overlay.Hosting;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>
/// Runs this silo's overlay node for the life of the host: the network key from configuration (or, in development,
/// the user's development key), the secure TCP transport, and the way into the ring (seeds or discovery). Logs ring
/// neighbours as they come and go.
/// </summary>
internal sealed partial class OverlayHostedService(
    IConfiguration configuration, IHostEnvironment environment, ILoggerFactory loggers, NetworkKey? key = null) : IHostedService
{
    private readonly ILogger _logger = loggers.CreateLogger("Iris.Hosting.Overlay");
    private OverlayHost? _host;

    /// <summary>The running overlay, once started.</summary>
    public OverlayHost? Host => _host;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var development = environment.IsDevelopment();
        var networkKey = key ?? NetworkKeys.Resolve(configuration, development);
        LogKey(_logger, networkKey.Fingerprint, configuration["Iris:Network:Key"] is { Length: > 0 } ? "Iris:Network:Key"
            : configuration["Iris:Network:KeyFile"] ?? NetworkKeys.DevelopmentPath(configuration));
        var options = Bind(configuration);
        _host = OverlayHost.Start(options, networkKey, development, loggers);
        _host.NeighbourJoined += node => LogNeighbourJoined(_logger, node.Key, node.Address);
        _host.NeighbourLeft += node => LogNeighbourLeft(_logger, node.Key, node.Address);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_host is not null)
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Overlay settings from <c>Iris:Overlay</c>, seeds and discovery from <c>Iris:Network</c>.</summary>
    internal static OverlayOptions Bind(IConfiguration configuration)
    {
        var options = new OverlayOptions();
        configuration.GetSection("Iris:Overlay").Bind(options);
        foreach (var seed in configuration.GetSection("Iris:Network:Seeds").Get<string[]>() ?? [])
        {
            options.Seeds.Add(seed);
        }

        configuration.GetSection("Iris:Network:Discovery").Bind(options.Discovery);
        var tcp = new TcpTransportOptionsValidator().Validate(null, options.Tcp);
        var pastry = new Overlay.Pastry.PastryOptionsValidator().Validate(null, options.Pastry);
        if (tcp.Failed || pastry.Failed)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(
                nameof(OverlayOptions), typeof(OverlayOptions), [.. tcp.Failures ?? [], .. pastry.Failures ?? []]);
        }

        return options;
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} joined")]
    private static partial void LogNeighbourJoined(ILogger logger, Overlay.NodeKey key, NodeAddress address);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Network key {Fingerprint} from {Source}")]
    private static partial void LogKey(ILogger logger, string fingerprint, string source);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} left")]
    private static partial void LogNeighbourLeft(ILogger logger, Overlay.NodeKey key, NodeAddress address);
}

/// <summary>Where a silo's network key comes from.</summary>
internal static class NetworkKeys
{
    /// <summary>
    /// <c>Iris:Network:Key</c> (base64), else <c>Iris:Network:KeyFile</c>; in development with neither, the user's
    /// development key (<c>~/.iris/network-key</c>, created on first use), so every node a developer starts joins the
    /// same network. In production a missing key stops the silo with a message saying how to create one.
    /// </summary>
    public static NetworkKey Resolve(IConfiguration configuration, bool development)
    {
        if (configuration["Iris:Network:Key"] is { Length: > 0 } text)
        {
            return NetworkKey.Parse(text);
        }

        if (configuration["Iris:Network:KeyFile"] is { Length: > 0 } file)
        {
            return NetworkKey.ReadFile(file);
        }

        if (development)
        {
            return NetworkKey.LoadOrCreateDevelopmentKey(DevelopmentPath(configuration));
        }

        throw new NetworkKeyException(
            "No network key is configured. A production node needs Iris:Network:Key (base64 of 32 random bytes, e.g. from "
            + "`openssl rand -base64 32`) or Iris:Network:KeyFile (a file holding it), the same on every node of the network.");
    }

    /// <summary>Where the development key is kept: <c>Iris:Network:DevelopmentKeyFile</c>, or <c>~/.iris/network-key</c>.</summary>
    public static string DevelopmentPath(IConfiguration configuration) =>
        configuration["Iris:Network:DevelopmentKeyFile"] is { Length: > 0 } custom ? custom : NetworkKey.DefaultDevelopmentKeyPath;
}
