using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Iris.Overlay.Security;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Discovery;

/// <summary>
/// Sends this node's beacon every interval and reports valid beacons of other nodes of the same network. Loopback
/// scope: the node listens on the first free port of a small well-known range on 127.0.0.1 and beacons to every port
/// of the range. LAN scope: it listens on the well-known port of every address and beacons to the broadcast address
/// of each chosen interface. Nothing is ever sent anywhere else.
/// </summary>
internal sealed partial class BeaconDiscovery : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkKey _key;
    private readonly DiscoveryOptions _options;
    private readonly ILogger _logger;
    private readonly IPEndPoint[] _targets;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _receiveLoop;
    private readonly Task _sendLoop;
    private readonly BeaconFilter _filter;
    private readonly TimeProvider _time;
    private readonly NodeHandle _self;
    private readonly string _gateway;
    private volatile bool _ready;

    private BeaconDiscovery(Socket socket, IPEndPoint[] targets, NetworkKey key, Beacon beacon, DiscoveryOptions options, ILogger logger, TimeProvider time)
    {
        _socket = socket;
        _time = time;
        _filter = new BeaconFilter(key, options.BeaconFreshness, time);
        _targets = targets;
        _key = key;
        _self = beacon.Node;
        _gateway = beacon.Gateway;
        _options = options;
        _logger = logger;
        _receiveLoop = Task.Run(ReceiveLoopAsync);
        _sendLoop = Task.Run(SendLoopAsync);
    }

    /// <summary>Raised on every valid beacon of another node of this network (not on a background thread's lock).</summary>
    public event Action<Beacon>? Heard;

    /// <summary>Datagrams ignored: from another network (wrong MAC) or malformed.</summary>
    public long ForeignBeacons => _filter.Foreign;

    /// <summary>Beacons ignored for being older (or newer) than the freshness window allows.</summary>
    public long StaleBeacons => _filter.Stale;

    /// <summary>Beacons ignored for not being newer than one already heard from the same node: replays.</summary>
    public long RepeatedBeacons => _filter.Repeated;

    /// <summary>The local UDP endpoint beacons are received on.</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    public static BeaconDiscovery Start(
        DiscoveryScope scope, NodeHandle self, NetworkKey key, DiscoveryOptions options, ILogger? logger = null, string? gateway = null, TimeProvider? time = null)
    {
        logger ??= NullLogger.Instance;
        time ??= TimeProvider.System;
        var beacon = new Beacon(self, Ready: false, gateway ?? string.Empty, 0, 0);
        return scope switch
        {
            DiscoveryScope.Loopback => StartLoopback(beacon, key, options, logger, time),
            DiscoveryScope.Lan => StartLan(beacon, key, options, logger, time),
            _ => throw new ArgumentOutOfRangeException(nameof(scope), scope, "Discovery needs the Loopback or Lan scope."),
        };
    }

    /// <summary>From now on the beacon says whether the node is in a ring.</summary>
    public void SetReady(bool ready) => _ready = ready;

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await Task.WhenAll(_receiveLoop, _sendLoop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static BeaconDiscovery StartLoopback(Beacon beacon, NetworkKey key, DiscoveryOptions options, ILogger logger, TimeProvider time)
    {
        var ports = Enumerable.Range(options.Port, options.LoopbackPorts).ToArray();
        foreach (var port in ports)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            }
            catch (SocketException)
            {
                socket.Dispose();
                continue;
            }

            var targets = ports.Where(p => p != port).Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray();
            LogStarted(logger, "loopback", socket.LocalEndPoint!.ToString()!, string.Join(", ", $"127.0.0.1:{ports[0]}-{ports[^1]}"));
            return new BeaconDiscovery(socket, targets, key, beacon, options, logger, time);
        }

        throw new InvalidOperationException(
            $"Every loopback discovery port from {ports[0]} to {ports[^1]} is taken: stop some nodes, or widen Iris:Network:Discovery:LoopbackPorts.");
    }

    private static BeaconDiscovery StartLan(Beacon beacon, NetworkKey key, DiscoveryOptions options, ILogger logger, TimeProvider time)
    {
        var targets = BroadcastAddresses(options.Interfaces).Select(a => new IPEndPoint(a, options.Port)).ToArray();
        if (targets.Length == 0)
        {
            throw new InvalidOperationException(
                "LAN discovery found no IPv4 interface to broadcast on" + (options.Interfaces.Count > 0 ? $" among {string.Join(", ", options.Interfaces)}" : string.Empty)
                + ": configure Iris:Network:Seeds, or name interfaces in Iris:Network:Discovery:Interfaces.");
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.EnableBroadcast = true;
        socket.Bind(new IPEndPoint(IPAddress.Any, options.Port));
        LogStarted(logger, "LAN", socket.LocalEndPoint!.ToString()!, string.Join(", ", targets.Select(t => t.ToString())));
        return new BeaconDiscovery(socket, targets, key, beacon, options, logger, time);
    }

    /// <summary>The IPv4 broadcast address of each chosen interface that is up.</summary>
    internal static List<IPAddress> BroadcastAddresses(ICollection<string> names)
    {
        var result = new List<IPAddress>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up && nic.OperationalStatus != OperationalStatus.Unknown)
            {
                continue;
            }

            if (names.Count > 0 ? !names.Contains(nic.Name) : nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
            {
                continue;
            }

            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                if (unicast.Address.AddressFamily != AddressFamily.InterNetwork || unicast.IPv4Mask is null)
                {
                    continue;
                }

                var address = unicast.Address.GetAddressBytes();
                var mask = unicast.IPv4Mask.GetAddressBytes();
                for (var i = 0; i < 4; i++)
                {
                    address[i] = (byte)(address[i] | ~mask[i]);
                }

                result.Add(new IPAddress(address));
            }
        }

        return result;
    }

    private async Task SendLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.BeaconInterval);
        do
        {
            var datagram = Beacon.Create(_self, _ready, _gateway, _time).Encode(_key);
            foreach (var target in _targets)
            {
                try
                {
                    await _socket.SendToAsync(datagram, SocketFlags.None, target, _stopping.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    // Nobody on that port (loopback answers with ICMP), or the interface went down: next time.
                }
            }
        }
        while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false));
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[Beacon.MaxSize + 1];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stopping.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stopping.Token).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                continue;
            }

            if (_filter.Check(buffer.AsSpan(0, received.ReceivedBytes), out var beacon) == BeaconVerdict.Accepted && beacon.Node.Key != _self.Key)
            {
                Heard?.Invoke(beacon);
            }
        }
    }

    [LoggerMessage(EventId = 4000, Level = LogLevel.Information, Message = "Discovery ({Scope}) listening on {Endpoint}, beaconing to {Targets}")]
    private static partial void LogStarted(ILogger logger, string scope, string endpoint, string targets);
}
