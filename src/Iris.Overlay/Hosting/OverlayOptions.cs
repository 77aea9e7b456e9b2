using Iris.Overlay.Discovery;
using Iris.Overlay.Pastry;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Hosting;

/// <summary>Settings of a node's overlay: where it listens, how it finds the ring, and its protocols' settings.</summary>
public sealed class OverlayOptions
{
    /// <summary>IP address the overlay listens on and advertises. Null: 127.0.0.1 in development, the first IPv4
    /// address of an interface that is up in production.</summary>
    public string? ListenAddress { get; set; }

    /// <summary>TCP port of the overlay; 0 (the default) picks a free one, which discovery then announces.</summary>
    public int Port { get; set; }

    /// <summary>Overlay addresses (<c>tcp://ip:port</c> or <c>ip:port</c>) of nodes to join through. When given, they
    /// replace discovery.</summary>
    public IList<string> Seeds { get; } = [];

    /// <summary>File holding this node's key (32 hex digits), created on first start: a restarted node keeps its key
    /// and so its place on the ring. Null (the default) draws a new random key at every start.</summary>
    public string? NodeKeyFile { get; set; }

    /// <summary>The Orleans gateway (<c>ip:port</c>) this node's beacons offer to clients; none when null.</summary>
    public string? Gateway { get; set; }

    /// <summary>How long a node listens for beacons before it starts a ring of its own. Default 2 seconds.</summary>
    public TimeSpan DiscoveryWait { get; set; } = TimeSpan.FromSeconds(2);

    public PastryOptions Pastry { get; set; } = new();

    public TcpTransportOptions Tcp { get; set; } = new();

    public DiscoveryOptions Discovery { get; set; } = new();
}
