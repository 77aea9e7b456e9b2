namespace Iris.Cli.Connection;

/// <summary>How the command reaches an Iris network: the global options, applied over the <c>Iris:Client</c> settings
/// read from the environment (<c>Iris__Client__NetworkKey</c>, <c>Iris__Client__DiscoveryPort</c>, …).</summary>
/// <param name="Gateways">Gateways (<c>ip:port</c>) to connect to instead of listening to beacons; none listens.</param>
/// <param name="KeyFile">File holding the network key; null keeps the configured key, else the development key.</param>
/// <param name="DiscoveryPort">First port of the loopback discovery range; null keeps the configured one (14142).</param>
/// <param name="ConnectTimeout">How long connecting may take before the command gives up.</param>
/// <param name="Verbose">Whether Orleans' and Iris' logs are written to standard error.</param>
internal sealed record ConnectionSettings(IReadOnlyList<string> Gateways, string? KeyFile, int? DiscoveryPort, TimeSpan ConnectTimeout, bool Verbose);
