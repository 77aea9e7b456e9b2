using System.Collections.Concurrent;
using System.Net;
using Iris.Overlay.Discovery;
using Iris.Overlay.Pastry;
using Iris.Overlay.Security;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Iris.Overlay.Hosting;

/// <summary>
/// One node's overlay in a real process: the secure TCP transport, the Pastry node on the system clock, and the way
/// into a ring: configured seeds, or else discovery beacons. With discovery, a node listens for beacons a moment; if
/// it hears a node already in a ring it joins through it, and if it hears none it starts a ring (when several start
/// together, the one with the smallest key starts and the others join it). Beacons heard later are introduced to the
/// ring, so rings that formed apart merge.
/// </summary>
internal sealed partial class OverlayHost : IAsyncDisposable
{
    /// <summary>The configuration key of <see cref="OverlayOptions.ListenAddress"/>.</summary>
    public const string ListenAddressSetting = "Iris:Overlay:ListenAddress";

    private readonly TimerQueue _timers;
    private readonly ConcurrentDictionary<NodeKey, (Beacon Beacon, long HeardAt)> _heard = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ILogger _logger;
    private readonly OverlayOptions _options;
    private readonly Lock _neighbourLock = new();
    private HashSet<NodeHandle> _neighbours = [];
    private Task _bootstrap = Task.CompletedTask;

    private OverlayHost(TimerQueue timers, TcpTransport transport, PastryNode node, OverlayOptions options, ILogger logger)
    {
        _timers = timers;
        Transport = transport;
        Node = node;
        _options = options;
        _logger = logger;
        node.LeafSetChanged += OnLeafSetChanged;
    }

    /// <summary>A leaf-set member appeared.</summary>
    public event Action<NodeHandle>? NeighbourJoined;

    /// <summary>A leaf-set member disappeared (dead, left, or pushed out by a closer node).</summary>
    public event Action<NodeHandle>? NeighbourLeft;

    public TcpTransport Transport { get; }

    public PastryNode Node { get; }

    public BeaconDiscovery? Discovery { get; private set; }

    public TimerQueue Timers => _timers;

    public static async Task<OverlayHost> StartAsync(OverlayOptions options, NetworkKey key, bool development, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(key);
        loggers ??= NullLoggerFactory.Instance;
        var logger = loggers.CreateLogger("Iris.Overlay");
        var seeds = options.Seeds.Select(ParseSeed).ToList();
        var scope = options.Discovery.Scope ?? (development ? DiscoveryScope.Loopback : DiscoveryScope.Lan);
        var listen = ListenAddress(options, development);
        var timers = new TimerQueue(TimeProvider.System, loggers.CreateLogger("Iris.Overlay.Timing"));
        var transport = TcpTransport.Start(new IPEndPoint(listen, options.Port), key, options.Tcp, loggers.CreateLogger("Iris.Overlay.Transport"));
        OverlayHost host;
        try
        {
            var node = new PastryNode(NodeKeyFor(options), transport, timers, options.Pastry, new Random(), loggers.CreateLogger("Iris.Overlay.Pastry"));
            host = new OverlayHost(timers, transport, node, options, logger);
            LogNode(logger, node.Self.Key, node.Self.Address, seeds.Count > 0 ? "seeds " + string.Join(", ", seeds) : $"{scope} discovery");
            if (seeds.Count > 0)
            {
                node.Join(seeds);
            }
            else if (scope == DiscoveryScope.None)
            {
                node.Start();
            }
            else
            {
                host.Discovery = BeaconDiscovery.Start(scope, node.Self, key, options.Discovery, logger, options.Gateway, timers.TimeProvider);
                host.Discovery.Heard += host.OnHeard;
                host._bootstrap = Task.Run(host.BootstrapAsync);
            }
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            timers.Dispose();
            throw;
        }

        return host;
    }

    /// <summary>Completes when the node is in a ring.</summary>
    public async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        while (!Node.IsReady)
        {
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The node's key: from <see cref="OverlayOptions.NodeKeyFile"/> (created with a random key if absent),
    /// or a new random one.</summary>
    internal static NodeKey NodeKeyFor(OverlayOptions options)
    {
        if (options.NodeKeyFile is not { Length: > 0 } path)
        {
            return NodeKey.NewRandom();
        }

        if (File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            return NodeKey.TryParse(text, out var saved)
                ? saved
                : throw new FormatException($"Iris:Overlay:NodeKeyFile '{path}' does not hold a node key (32 hexadecimal digits); delete it to get a new one.");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var key = NodeKey.NewRandom();
        File.WriteAllText(path, key.ToString());
        return key;
    }

    internal static NodeAddress ParseSeed(string seed)
    {
        var text = seed.Trim();
        var address = new NodeAddress(text.StartsWith("tcp://", StringComparison.Ordinal) ? text : "tcp://" + text);
        try
        {
            TcpLink.ParseEndPoint(address);
        }
        catch (FormatException)
        {
            throw new FormatException($"Iris:Network:Seeds has '{seed}', which is not an overlay address: expected <ip>:<port> or tcp://<ip>:<port>.");
        }

        return address;
    }

    private void OnHeard(Beacon beacon)
    {
        _heard[beacon.Node.Key] = (beacon, _timers.TimeProvider.GetTimestamp());
        if (beacon.Ready && Node.IsReady)
        {
            Node.Introduce(beacon.Node);
        }
    }

    /// <summary>Nodes heard lately (within three beacon intervals); a node that fell silent is not counted.</summary>
    private List<Beacon> Lately() =>
        [.. _heard.Values.Where(h => _timers.TimeProvider.GetElapsedTime(h.HeardAt) <= 3 * _options.Discovery.BeaconInterval).Select(h => h.Beacon)];

    private List<NodeAddress> ReadyLately() => [.. Lately().Where(b => b.Ready).OrderBy(b => b.Node.Key).Select(b => b.Node.Address)];

    /// <summary>Whether this node should be the one to start a ring: no node with a smaller key is heard starting.</summary>
    private bool SmallestStarting() => !Lately().Any(b => b.Node.Key < Node.Self.Key);

    private async Task BootstrapAsync()
    {
        try
        {
            for (var round = 0; ; round++)
            {
                await Task.Delay(round == 0 ? _options.DiscoveryWait : _options.Discovery.BeaconInterval, _stopping.Token).ConfigureAwait(false);
                var ready = ReadyLately();
                if (ready.Count > 0)
                {
                    Node.Join(ready);
                    await FollowJoinAsync().ConfigureAwait(false);
                    break;
                }

                // Nodes starting together: the smallest key starts the ring, the others wait to hear it is ready.
                if (SmallestStarting() || round >= 10)
                {
                    Node.Start();
                    break;
                }
            }

            await WaitUntilReadyAsync(_stopping.Token).ConfigureAwait(false);
            Discovery?.SetReady(true);
        }
        catch (OperationCanceledException)
        {
            // Stopped before the node got into a ring.
        }
    }

    /// <summary>
    /// Keeps a join going: the nodes tried are the ones heard ready lately, so a node that died (or a beacon of it
    /// played back) is dropped for the live ones. When no node is heard ready for a while, the join is abandoned and
    /// this node starts a ring if it would have started one anyway; rings that formed apart merge later.
    /// </summary>
    private async Task FollowJoinAsync()
    {
        var time = _timers.TimeProvider;
        var lastReadyHeard = time.GetTimestamp();
        var lastReport = lastReadyHeard;
        var giveUpAfter = 2 * _options.Pastry.JoinTimeout;
        while (!Node.IsReady)
        {
            await Task.Delay(_options.Discovery.BeaconInterval, _stopping.Token).ConfigureAwait(false);
            var ready = ReadyLately();
            if (ready.Count > 0)
            {
                lastReadyHeard = time.GetTimestamp();
                Node.SetJoinCandidates(ready);
            }
            else if (time.GetElapsedTime(lastReadyHeard) >= giveUpAfter && SmallestStarting() && Node.StartInsteadOfJoining())
            {
                LogJoinAbandoned(_logger, Node.Self.Key, giveUpAfter);
                return;
            }

            if (time.GetElapsedTime(lastReport) >= _options.Pastry.JoinTimeout && !Node.IsReady)
            {
                lastReport = time.GetTimestamp();
                LogStillJoining(_logger, Node.Self.Key, ready.Count == 0 ? "none heard ready lately" : string.Join(", ", ready));
            }
        }
    }

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Overlay node {Key} is not in a ring yet; nodes it can join through: {Candidates}")]
    private static partial void LogStillJoining(ILogger logger, NodeKey key, string candidates);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Overlay node {Key} heard no node of a ring for {Wait}: it stops joining and starts a ring, which merges with others when they are heard")]
    private static partial void LogJoinAbandoned(ILogger logger, NodeKey key, TimeSpan wait);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Overlay node {Key} at {Address}, finding the ring through {How}")]
    private static partial void LogNode(ILogger logger, NodeKey key, NodeAddress address, string how);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _bootstrap.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Node.Leave();
        if (Discovery is not null)
        {
            await Discovery.DisposeAsync().ConfigureAwait(false);
        }

        await Transport.DisposeAsync().ConfigureAwait(false);
        _timers.Dispose();
    }

    /// <summary>Where the overlay listens: <see cref="OverlayOptions.ListenAddress"/>, else the rule of
    /// <see cref="HostAddress"/>.</summary>
    internal static IPAddress ListenAddress(OverlayOptions options, bool development) =>
        HostAddress.Resolve(options.ListenAddress, development, ListenAddressSetting);

    private void OnLeafSetChanged()
    {
        var (ccw, cw) = Node.GetLeafSet();
        var now = cw.Concat(ccw).ToHashSet();
        HashSet<NodeHandle> before;
        lock (_neighbourLock)
        {
            before = _neighbours;
            _neighbours = now;
        }

        foreach (var joined in now.Except(before))
        {
            NeighbourJoined?.Invoke(joined);
        }

        foreach (var left in before.Except(now))
        {
            NeighbourLeft?.Invoke(left);
        }
    }
}
