using Iris.Relay;
using Iris.Relay.Protocol;
using Microsoft.Extensions.Logging;

namespace Iris.Relay.Sessions;

/// <summary>What every relay connection of a silo shares.</summary>
internal sealed class RelayContext(IIrisClient iris, RelayOptions options, int tunnelMessageBytes, ILogger logger)
{
    public IIrisClient Iris { get; } = iris;

    public RelayOptions Options { get; } = options;

    public RelayLimits Limits { get; } = new(options.MaxMessageBytes, options.MaxNameBytes);

    /// <summary>Largest message a tunnel through the relay carries: the silo's Iris:Tunnels:MaxMessageBytes.</summary>
    public int TunnelMessageBytes { get; } = tunnelMessageBytes;

    public ILogger Logger { get; } = logger;
}
