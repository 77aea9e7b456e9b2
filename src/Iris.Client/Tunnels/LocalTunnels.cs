using System.Collections.Concurrent;
using System.Diagnostics;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;
using Iris.Requests;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime.Messaging;

namespace Iris.Tunnels;

/// <summary>
/// The tunnel ends of this process: created when this process opens a tunnel or one of its members accepts one, and
/// forgotten when the tunnel ends. Dispatches what the member host receives for them (only from the process at each
/// end's other side), and checks every few seconds that the processes at their other ends are alive (one call per peer
/// process, not per tunnel): a peer that does not answer three checks in a row has its tunnels closed with
/// <see cref="TunnelCloseReason.PeerDied"/>.
/// </summary>
internal sealed class LocalTunnels : IAsyncDisposable
{
    private readonly ConcurrentDictionary<Guid, TunnelEnd> _ends = new();
    private readonly ConcurrentDictionary<Guid, Task<TunnelAccepted>> _accepting = new();
    private readonly ConcurrentDictionary<string, int> _missed = new(StringComparer.Ordinal);
    private readonly RecentIds _closed;
    private readonly RecentIds _abandoned;
    private readonly RecentIds _stopped;
    private readonly IGrainFactory _grains;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _keepAlive;

    public LocalTunnels(IGrainFactory grains, IOptions<TunnelOptions> options, CallPolicy policy, ILogger<LocalTunnels> logger, DirectRoutes? direct = null)
    {
        _grains = grains;
        _logger = logger;
        _time = policy.Time;
        _closed = new RecentIds(_time);
        _abandoned = new RecentIds(_time);
        _stopped = new RecentIds(_time);
        Policy = policy;
        Direct = direct;
        Options = options.Value;
        _keepAlive = Task.Run(KeepAliveAsync);
    }

    /// <summary>How long past an open's time left a repeat of it may still arrive.</summary>
    private static readonly TimeSpan OpenRepeatMargin = TimeSpan.FromSeconds(30);

    public TunnelOptions Options { get; }

    public CallPolicy Policy { get; }

    /// <summary>One-hop routes to silos' members, in an Orleans client; null in a silo.</summary>
    public DirectRoutes? Direct { get; }

    /// <summary>Where this process's member host is reached; set by the process's <see cref="IIrisClient"/>.</summary>
    public Func<MemberEndpoint>? Self { get; set; }

    /// <summary>This process's id, as its peers know it.</summary>
    public string SelfId => SelfEndpoint.Id;

    private MemberEndpoint SelfEndpoint => Self?.Invoke() ?? throw new InvalidOperationException("This process's member host is not known yet.");

    public int Count => _ends.Count;

    /// <summary>A new end for a tunnel this process opens; connected once the member accepted.</summary>
    public TunnelEnd Create(string cluster)
    {
        var end = new TunnelEnd(this, _grains, Options, cluster, Guid.NewGuid(), opener: true);
        _ends[end.Id] = end;
        IrisMetrics.TunnelsChanged(1);
        return end;
    }

    /// <summary>The opener gave up on <paramref name="end"/> before the member's answer came.</summary>
    public void Abandon(TunnelEnd end)
    {
        _abandoned.Add(end.Id);
        end.End(TunnelCloseReason.OpenerTimedOut, null, notifyPeer: false);
    }

    /// <summary>
    /// A member here is offered tunnel <paramref name="id"/>: its handler starts serving it, or refuses. An offer
    /// repeated by an opener that lost the answer gets the first offer's answer, so the tunnel has one member end.
    /// </summary>
    public Task<TunnelAccepted> AcceptAsync(
        string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining, IClusterHandler handler, TunnelSet set)
    {
        var first = new TaskCompletionSource<TunnelAccepted>(TaskCreationOptions.RunContinuationsAsynchronously);
        var accepting = _accepting.GetOrAdd(id, first.Task);
        if (accepting != first.Task)
        {
            return accepting;
        }

        _ = Task.Run(async () =>
        {
            using (var activity = IrisTracing.Start("tunnel accept", cluster, ActivityKind.Server))
            {
                activity?.SetTag("iris.tunnel.id", id);
                try
                {
                    first.TrySetResult(await StartAsync(cluster, id, opener, openerWindow, remaining, handler, set).ConfigureAwait(false));
                }
                catch (Exception e)
                {
                    first.TrySetException(e);
                    IrisTracing.Failed(activity, e);
                }
            }

            // Kept while the opener may repeat (within its time left, plus a margin for a repeat on its way): a repeat
            // must not start a second end.
            await Task.Delay(remaining + OpenRepeatMargin, _time, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _accepting.TryRemove(new KeyValuePair<Guid, Task<TunnelAccepted>>(id, first.Task));
        });
        return first.Task;
    }

    private async Task<TunnelAccepted> StartAsync(
        string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining, IClusterHandler handler, TunnelSet set)
    {
        if (remaining <= TimeSpan.Zero)
        {
            throw new IrisTimeoutException(cluster, TimeSpan.Zero);
        }

        var self = SelfEndpoint;
        var end = new TunnelEnd(this, _grains, Options, cluster, id, opener: false);
        _ends[end.Id] = end;
        IrisMetrics.TunnelsChanged(1);
        end.Connect(opener, openerWindow, set);

        // A handler that throws before its first await refuses. It serves the tunnel for its whole life: under no span
        // (the acceptance's ends once it is accepted).
        Task serving;
        try
        {
            serving = IrisTracing.Detached(() => handler.HandleTunnelAsync(end, end.Closing));
        }
        catch (Exception e)
        {
            serving = Task.FromException(e);
        }

        if (serving.IsFaulted)
        {
            var reason = serving.Exception!.InnerException!.Message;
            end.End(TunnelCloseReason.Refused, reason, notifyPeer: false);
            throw new TunnelClosedException(cluster, TunnelCloseReason.Refused, reason);
        }

        _ = ServeAsync(end, serving);
        return new TunnelAccepted(self, Options.WindowBytes);
    }

    /// <summary>Waits for a member's handler to finish, then closes its tunnel gracefully if still open.</summary>
    private async Task ServeAsync(TunnelEnd end, Task handler)
    {
        try
        {
            await handler.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The tunnel closed under it.
        }
        catch (Exception e)
        {
            Log.TunnelHandlerFailed(_logger, e, end.Cluster, end.Id);
        }

        await end.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Frames from process <paramref name="from"/>; the end checks the sender under its own lock, so an
    /// opener turning to another member process in between never takes the earlier one's frames.</summary>
    public TunnelStatus OnData(string from, Guid id, TunnelFrame[] frames) =>
        _ends.TryGetValue(id, out var end) ? end.OnData(from, frames) : StatusOf(id);

    public TunnelStatus OnCredit(string from, Guid id, long grantedTotal) =>
        _ends.TryGetValue(id, out var end) && end.OnCredit(from, grantedTotal) ? TunnelStatus.Open : StatusOf(id);

    public void OnPeerFailed(string from, Guid id, TunnelCloseReason reason, string? detail) =>
        Find(from, id)?.End(reason, detail, notifyPeer: false);

    public TunnelStatus[] Statuses(string from, Guid[] ids) => [.. ids.Select(id => Find(from, id) is not null ? TunnelStatus.Open : StatusOf(id))];

    /// <summary>The end <paramref name="id"/> whose other side is process <paramref name="from"/>.</summary>
    private TunnelEnd? Find(string from, Guid id) =>
        _ends.TryGetValue(id, out var end) && string.Equals(end.PeerProcess, from, StringComparison.Ordinal) ? end : null;

    /// <summary>Called by an end as it ends.</summary>
    /// <summary>Forgets an end that ended; <paramref name="peerReason"/> is what its peer is told, and what this
    /// process answers for it meanwhile, should the peer ask before it heard (closed gracefully, or stopped).</summary>
    public void Forget(TunnelEnd end, TunnelCloseReason peerReason)
    {
        if (peerReason is TunnelCloseReason.ClosedByPeer)
        {
            _closed.Add(end.Id);
        }
        else if (peerReason is TunnelCloseReason.PeerStopped)
        {
            _stopped.Add(end.Id);
        }

        if (_ends.TryRemove(new KeyValuePair<Guid, TunnelEnd>(end.Id, end)))
        {
            IrisMetrics.TunnelsChanged(-1);
        }
    }

    public static TunnelCloseReason ReasonFor(TunnelStatus status) => status switch
    {
        TunnelStatus.Closed => TunnelCloseReason.ClosedByPeer,
        TunnelStatus.Abandoned => TunnelCloseReason.OpenerTimedOut,
        TunnelStatus.Stopped => TunnelCloseReason.PeerStopped,
        _ => TunnelCloseReason.PeerDied,
    };

    /// <summary>What this process says of a tunnel end it has not got for the caller: closed gracefully a moment ago,
    /// abandoned (the opener gave up, or took another member's end), or unknown.</summary>
    private TunnelStatus StatusOf(Guid id) =>
        _closed.Contains(id) ? TunnelStatus.Closed
        : _stopped.Contains(id) ? TunnelStatus.Stopped
        : _abandoned.Contains(id) || _ends.ContainsKey(id) ? TunnelStatus.Abandoned
        : TunnelStatus.Unknown;

    private async Task KeepAliveAsync()
    {
        using var timer = new PeriodicTimer(Options.KeepAliveInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var byPeer = _ends.Values.Where(e => e.Peer is not null).GroupBy(e => e.Peer!.Id, StringComparer.Ordinal);
                await Task.WhenAll(byPeer.Select(peer => CheckAsync(peer.First().Peer!, [.. peer]))).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task CheckAsync(MemberEndpoint peer, TunnelEnd[] ends)
    {
        try
        {
            var self = SelfId;
            var budget = Policy.Start(Options.KeepAliveTimeout);
            var statuses = await Policy.WithinAsync(peer.Call(_grains, host => host.TunnelPing(self, [.. ends.Select(e => e.PeerId)])), budget, _stopping.Token).ConfigureAwait(false);
            _missed.TryRemove(peer.Id, out _);
            for (var i = 0; i < ends.Length && i < statuses.Length; i++)
            {
                if (statuses[i] != TunnelStatus.Open)
                {
                    ends[i].End(ReasonFor(statuses[i]), null, notifyPeer: false);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !_stopping.IsCancellationRequested)
        {
            // A check that failed on the way, at another silo that died (the gateway, or the one holding the member
            // host's directory entry until the cluster declares it dead), says nothing of the peer: it is not a miss.
            if (!MayBlame(e, peer))
            {
                Log.TunnelCheckFailedElsewhere(_logger, peer.Id, e.Message);
                return;
            }

            // Missed: a client reports "silo unavailable" for calls that went by way of a gateway that died, so only
            // three misses in a row say the peer is gone.
            if (_missed.AddOrUpdate(peer.Id, 1, (_, n) => n + 1) >= 3)
            {
                Fail(peer, ends, $"no answer to three keep-alive checks ({e.GetType().Name}: {e.Message})");
            }
        }
    }

    /// <summary>
    /// Whether a failed check may mean the peer is gone: a timeout or any failure may, except a failure to connect
    /// that names another silo than the peer's (Orleans' "Unable to connect to S…" or "… to endpoint S…" names the silo
    /// it could not reach in the message, and has no property for it), and a check whose placement never completed (Orleans' lookup of the
    /// peer's member host kept failing at the silo holding its directory entry until the message expired: the check
    /// never left this process). Neither has a type or property of its own in Orleans, only its message.
    /// </summary>
    internal static bool MayBlame(Exception error, MemberEndpoint peer)
    {
        if (peer.Silo is not { } silo)
        {
            return true;
        }

        var named = false;
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is OperationCanceledException && e.Message.Contains("before placement could complete", StringComparison.Ordinal))
            {
                return false;
            }

            if (e is SiloUnavailableException or ConnectionFailedException or OrleansMessageRejectionException)
            {
                if (e.Message.Contains(silo.ToString(), StringComparison.Ordinal))
                {
                    return true;
                }

                named |= e.Message.Contains("Unable to connect to S", StringComparison.Ordinal)
                    || e.Message.Contains("Unable to connect to endpoint S", StringComparison.Ordinal);
            }
        }

        return !named;
    }

    private void Fail(MemberEndpoint peer, TunnelEnd[] ends, string detail)
    {
        _missed.TryRemove(peer.Id, out _);
        Log.TunnelPeerDied(_logger, peer.Id, ends.Length, detail);
        foreach (var end in ends)
        {
            end.End(TunnelCloseReason.PeerDied, detail, notifyPeer: false);
        }
    }

    /// <summary>
    /// Ends every tunnel of this process and tells the peers, waiting a moment for them to hear it: a peer that did not
    /// would go on calling a process that is gone. A graceful stop (<paramref name="graceful"/>: the host was asked to
    /// stop and given time) tells them <see cref="TunnelCloseReason.PeerStopped"/>; a stop cut short, or what is left
    /// when the process's services are disposed, <see cref="TunnelCloseReason.PeerDied"/>, as a death would.
    /// </summary>
    public async Task CloseAllAsync(bool graceful)
    {
        var told = _ends.Values.Select(end => graceful
            ? end.EndAsync(TunnelCloseReason.Closed, "this process is stopping", notifyPeer: true, forPeer: TunnelCloseReason.PeerStopped)
            : end.EndAsync(TunnelCloseReason.PeerDied, "its process is stopping", notifyPeer: true)).ToArray();
        await Task.WhenAll(told).WaitAsync(TimeSpan.FromSeconds(2), _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _keepAlive.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await CloseAllAsync(graceful: false).ConfigureAwait(false);
    }
}
