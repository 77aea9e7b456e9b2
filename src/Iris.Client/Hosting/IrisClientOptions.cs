using Iris.Overlay.Discovery;

namespace Iris.Hosting;

/// <summary>How an Orleans client finds an Iris network. Bound from the <c>Iris:Client</c> configuration section, then
/// changed by the action given to <c>UseIris</c>; checked at start-up.</summary>
public sealed class IrisClientOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "Iris:Client";

    /// <summary>Orleans cluster id of the silos. Default <c>iris</c>.</summary>
    public string ClusterId { get; set; } = "iris";

    /// <summary>Orleans service id of the silos. Default <c>iris</c>.</summary>
    public string ServiceId { get; set; } = "iris";

    /// <summary>Gateways (<c>ip:port</c>) to connect to. When empty the client listens to the network's beacons and
    /// uses the gateways silos announce there.</summary>
    public IList<string> Gateways { get; } = [];

    /// <summary>The network key (base64), to read beacons and secure connections; null uses <see cref="KeyFile"/>, else
    /// the user's development key.</summary>
    public string? NetworkKey { get; set; }

    /// <summary>File holding the network key.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Where beacons are heard: loopback (default) or LAN.</summary>
    public DiscoveryScope Scope { get; set; } = DiscoveryScope.Loopback;

    /// <summary>The discovery port (first of the loopback range). Default 14142.</summary>
    public int DiscoveryPort { get; set; } = 14142;
}
