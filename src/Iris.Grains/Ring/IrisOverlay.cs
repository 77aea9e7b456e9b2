using Iris.Overlay.Hosting;
using Iris.Overlay;
using Iris.Overlay.Records;
using Iris.Overlay.Scribe;
using Iris.Overlay.Transport;
using Iris.Overlay.Security;
using Iris.Grains.Diagnostics;
using Iris.Calls;
using Iris.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Iris.Ring;

/// <summary>
/// This silo's overlay node and the services on it, started once, on first use: by the hosted service when the host
/// starts, or earlier by Orleans' membership table, which lives on the ring and so needs the node in a ring first.
/// </summary>
internal sealed class IrisOverlay(
    IConfiguration configuration, IHostEnvironment environment, ILoggerFactory loggers, NetworkKeyProvider keys, IOptions<ScribeOptions> scribeOptions,
    [FromKeyedServices(LockedRandom.ServiceKey)] Random random, IOptions<EndpointOptions>? endpoints = null, IServiceProvider? services = null)
    : IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger("Iris.Ring.Overlay");
    private readonly SemaphoreSlim _gate = new(1, 1);
    private OverlayHost? _host;
    private RecordStore? _records;
    private RootLocator? _locator;
    private ScribeNode? _scribe;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<NodeKey, SiloAddress> _silos = new();

    /// <summary>The running overlay, once started.</summary>
    public OverlayHost? Host => _host;

    /// <summary>The Scribe trees of this node, once started (null before).</summary>
    public ScribeNode? Scribe => _scribe;

    /// <summary>Whether this node is in a ring now.</summary>
    public bool IsInRing => _host?.Node.IsReady == true;

    /// <summary>This node's ring key and address, once started.</summary>
    public string? NodeDescription => _host is { } host ? $"{host.Node.Self.Key} at {host.Node.Self.Address}" : null;

    /// <summary>Whether this node has started.</summary>
    public bool IsStarted => _host is not null;

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
                SiloLog.NetworkKeyFrom(_logger, networkKey.Fingerprint, configuration["Iris:Network:Key"] is { Length: > 0 } ? "Iris:Network:Key"
                    : configuration["Iris:Network:KeyFile"] ?? NetworkKeys.DevelopmentPath(configuration));
                var options = OverlayLifecycle.Bind(configuration);
                if (endpoints?.Value is { GatewayPort: > 0 } orleans)
                {
                    // Beacons offer this silo's gateway, so clients find it with no configuration either.
                    options.Gateway = $"{orleans.AdvertisedIPAddress ?? System.Net.IPAddress.Loopback}:{orleans.GatewayPort}";
                }

                var host = await OverlayHost.StartAsync(options, networkKey, development, loggers).ConfigureAwait(false);
                host.NeighbourJoined += node =>
                {
                    SiloLog.NeighbourJoined(_logger, node.Key, node.Address);
                    RefreshMembership();
                };
                host.NeighbourLeft += node => SiloLog.NeighbourLeft(_logger, node.Key, node.Address);
                _records = new RecordStore(host.Node, host.Timers, logger: loggers.CreateLogger("Iris.Overlay.Records"));

                // The root of a key answers with this silo's Orleans address: rendezvous grains are placed by it.
                var silo = services?.GetService(typeof(Orleans.Runtime.ILocalSiloDetails)) as Orleans.Runtime.ILocalSiloDetails;
                _locator = new RootLocator(host.Node, host.Timers, silo?.SiloAddress.ToParsableString() ?? string.Empty);

                // Scribe trees per cluster and topic: silos with members subscribe their node; broadcasts and
                // publications travel down the trees over Orleans calls (the overlay carries only the trees).
                _scribe = new ScribeNode(host.Node, host.Timers, scribeOptions.Value, random, TreesOnly.Instance, loggers.CreateLogger("Iris.Overlay.Scribe"));
                _host = host;
            }

            return _host;
        }
        finally
        {
            _gate.Release();
        }
    }

    private int _refreshes;

    /// <summary>
    /// Has Orleans read its membership table now rather than at its next periodic refresh: a neighbour that joined may
    /// be a silo of a ring that formed apart and has just merged with this one, whose table this silo then joins at once
    /// (see <see cref="Membership.OverlayMembershipTable"/>). One read at a time; neighbours that join meanwhile get one
    /// more read after it.
    /// </summary>
    private void RefreshMembership()
    {
        if (services?.GetService(typeof(IClusterMembershipService)) is not IClusterMembershipService membership || Interlocked.Increment(ref _refreshes) > 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            do
            {
                Volatile.Write(ref _refreshes, 1);
                try
                {
                    await membership.Refresh().ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    SiloLog.MembershipRefreshFailed(_logger, e.Message);
                }
            }
            while (Interlocked.Decrement(ref _refreshes) > 0);
        });
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

    /// <summary>The Scribe trees of this node, once this node is in a ring.</summary>
    public async Task<ScribeNode> GetScribeAsync(CancellationToken cancellationToken)
    {
        await GetRecordsAsync(cancellationToken).ConfigureAwait(false);
        return _scribe!;
    }

    /// <summary>The silo of the overlay node <paramref name="node"/>: asked of the node itself (the root of its own
    /// key answers with its silo's address), then remembered until <see cref="ForgetSilo"/>.</summary>
    public async Task<SiloAddress> SiloOfAsync(NodeKey node, CancellationToken cancellationToken)
    {
        if (_silos.TryGetValue(node, out var known))
        {
            return known;
        }

        var locator = await GetLocatorAsync(cancellationToken).ConfigureAwait(false);
        var tag = await locator.FindRootAsync(node, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        if (tag.Length == 0)
        {
            throw new SiloUnavailableException($"Overlay node {node} has no silo.");
        }

        return _silos[node] = SiloAddress.FromParsableString(tag);
    }

    /// <summary>Forgets the silo of <paramref name="node"/>, after a call to it failed.</summary>
    public void ForgetSilo(NodeKey node) => _silos.TryRemove(node, out _);

    /// <summary>How long a leaving silo spends at most handing the records it replicates over to the nodes that stay.</summary>
    public static readonly TimeSpan HandOffTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Leaves the ring gracefully: first hands the records this node replicates over to the nodes that stay
    /// (so silos stopped one after another never take the membership table's majority with them), then leaves.</summary>
    public async Task LeaveAsync(CancellationToken cancellationToken)
    {
        if (_records is { } records && _host is { Node.IsReady: true })
        {
            try
            {
                await records.HandOffAsync(HandOffTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopping in a hurry: the records stay as after a crash of this node.
            }
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _scribe?.Dispose();
        _records?.Dispose();
        _locator?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Silos use Scribe for its trees; nothing is multicast or anycast on the overlay itself.</summary>
    private sealed class TreesOnly : IScribeHandler
    {
        public static readonly TreesOnly Instance = new();

        public void OnMulticast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin)
        {
        }

        public void OnAnycast(NodeKey group, string member, ScribeMessageId id, ReadOnlyMemory<byte> payload, NodeHandle origin)
        {
        }

        public void OnNoMembers(NodeKey group, ScribeMessageId id)
        {
        }
    }
}
