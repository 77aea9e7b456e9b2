using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Iris.Overlay.Security;

namespace Iris.Overlay.Discovery;

/// <summary>
/// Listens to the beacons of a network without sending any: how an Orleans client, which is not a ring node, finds
/// the gateways silos offer. Binds the first free port of the loopback range (silos beacon to every port of it) or,
/// in LAN scope, the well-known port.
/// </summary>
internal sealed class BeaconListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly BeaconFilter _filter;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<NodeKey, (Beacon Beacon, long Heard)> _heard = new();
    private readonly TimeProvider _time;
    private readonly Task _loop;

    private BeaconListener(Socket socket, NetworkKey key, DiscoveryOptions options, TimeProvider time)
    {
        _socket = socket;
        _filter = new BeaconFilter(key, options.BeaconFreshness, time);
        _time = time;
        _loop = Task.Run(ReceiveAsync);
    }

    /// <summary>Starts listening; when a beacon was heard is measured on <paramref name="time"/>'s monotonic clock.</summary>
    public static BeaconListener Start(DiscoveryScope scope, NetworkKey key, DiscoveryOptions options, TimeProvider time)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        if (scope == DiscoveryScope.Lan)
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Any, options.Port));
            return new BeaconListener(socket, key, options, time);
        }

        for (var port = options.Port; port < options.Port + options.LoopbackPorts; port++)
        {
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return new BeaconListener(socket, key, options, time);
            }
            catch (SocketException)
            {
            }
        }

        socket.Dispose();
        throw new InvalidOperationException(
            $"Every loopback discovery port from {options.Port} to {options.Port + options.LoopbackPorts - 1} is taken; configure gateways explicitly.");
    }

    /// <summary>Gateways announced by nodes heard within <paramref name="maxAge"/>.</summary>
    public List<string> Gateways(TimeSpan maxAge) =>
        [.. _heard.Values.Where(h => _time.GetElapsedTime(h.Heard) <= maxAge && h.Beacon.Gateway.Length > 0).Select(h => h.Beacon.Gateway).Distinct().Order()];

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[Beacon.MaxSize + 1];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stopping.Token).ConfigureAwait(false);
                if (_filter.Check(buffer.AsSpan(0, received.ReceivedBytes), out var beacon) == BeaconVerdict.Accepted)
                {
                    _heard[beacon.Node.Key] = (beacon, _time.GetTimestamp());
                }
            }
            catch (SocketException)
            {
            }
        }
    }
}
