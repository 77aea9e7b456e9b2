namespace Iris.Overlay.Discovery;

/// <summary>Where beacons go.</summary>
public enum DiscoveryScope
{
    /// <summary>No beacons: only configured seeds.</summary>
    None,

    /// <summary>This machine only: beacons to a small range of loopback ports. The development default.</summary>
    Loopback,

    /// <summary>The local network: beacons to the broadcast address of each chosen interface. The production default.</summary>
    Lan,
}

/// <summary>Settings of zero-configuration discovery. Bound from <c>Iris:Network:Discovery</c>.</summary>
public sealed class DiscoveryOptions
{
    /// <summary>Where beacons go; null picks <see cref="DiscoveryScope.Loopback"/> in development and
    /// <see cref="DiscoveryScope.Lan"/> in production.</summary>
    public DiscoveryScope? Scope { get; set; }

    /// <summary>First UDP port of the well-known loopback range (and the LAN port). Default 14142.</summary>
    public int Port { get; set; } = 14142;

    /// <summary>Ports in the loopback range: each node listens on the first free one and beacons to all. One port
    /// cannot be shared on every platform, a small range can. Default 16.</summary>
    public int LoopbackPorts { get; set; } = 16;

    /// <summary>Network interfaces (by name) to broadcast on in LAN scope; empty means every IPv4 interface that is up
    /// and not loopback.</summary>
    public IList<string> Interfaces { get; } = [];

    /// <summary>How often a node sends its beacon. Default 1 second.</summary>
    public TimeSpan BeaconInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How far a beacon's timestamp may be from the receiver's clock before the beacon is ignored as stale
    /// (a capture played back, or a sender whose clock is that far off). Nodes of one network need clocks that agree
    /// within this. Default 30 seconds.</summary>
    public TimeSpan BeaconFreshness { get; set; } = TimeSpan.FromSeconds(30);
}
