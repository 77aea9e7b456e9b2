using System.Net;
using Iris.Overlay.Discovery;
using Iris.Security;
using Orleans.Messaging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Iris.Hosting;

/// <summary>
/// Gateways for an Orleans client of an Iris cluster: the configured ones, or else the ones silos announce in their
/// discovery beacons (MACed with the network key, so a client only ever connects to its own network).
/// </summary>
internal sealed class IrisGatewayListProvider(IOptions<IrisClientOptions> configured, NetworkKeyProvider keys, TimeProvider time) : IGatewayListProvider, IAsyncDisposable
{
    private readonly IrisClientOptions _options = configured.Value;
    /// <summary>How often the client asks for the gateway list (Orleans' default is a minute).</summary>
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan FirstBeaconWait = TimeSpan.FromSeconds(5);

    /// <summary>How often the list is looked at while no beacon has been heard yet: the first gateway is taken within
    /// this of its beacon.</summary>
    private static readonly TimeSpan FirstBeaconPoll = TimeSpan.FromMilliseconds(20);

    private readonly Lock _starting = new();
    private BeaconListener? _listener;

    public TimeSpan MaxStaleness => TimeSpan.FromSeconds(5);

    public bool IsUpdatable => true;

    /// <summary>Starts listening to beacons, once: an application may call it as soon as its host is built, before
    /// Orleans does when the client starts, so that the first beacon is heard while the rest of the client starts
    /// (beacons come every second; starting the Orleans client takes about as long).</summary>
    public Task InitializeGatewayListProvider()
    {
        lock (_starting)
        {
            if (_options.Gateways.Count == 0 && _listener is null)
            {
                _listener = BeaconListener.Start(_options.Scope, keys.Key, new DiscoveryOptions { Port = _options.DiscoveryPort }, time);
            }
        }

        return Task.CompletedTask;
    }

    public async Task<IList<Uri>> GetGateways()
    {
        if (_listener is null)
        {
            return [.. _options.Gateways.Select(ToUri)];
        }

        var started = time.GetTimestamp();
        var gateways = _listener.Gateways(TimeSpan.FromSeconds(10));
        while (gateways.Count == 0 && time.GetElapsedTime(started) < FirstBeaconWait)
        {
            await Task.Delay(FirstBeaconPoll, time).ConfigureAwait(false);
            gateways = _listener.Gateways(TimeSpan.FromSeconds(10));
        }

        return [.. gateways.Select(ToUri)];
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static Uri ToUri(string endpoint) =>
        IPEndPoint.TryParse(endpoint.Replace("tcp://", string.Empty, StringComparison.Ordinal), out var parsed)
            ? SiloAddress.New(parsed, 0).ToGatewayUri()
            : throw new FormatException($"Iris:Client:Gateways has '{endpoint}', which is not an <ip>:<port> endpoint.");
}
