using System.Collections.Concurrent;
using Iris.Diagnostics;
using Iris.Hosting;
using Iris.Members;
using Microsoft.Extensions.Logging;

namespace Iris.Tunnels;

/// <summary>
/// The tunnel ends of this process: created when this process opens a tunnel or one of its members accepts one, and
/// forgotten when the tunnel ends. Dispatches what the member host receives for them, and checks every few seconds
/// that the processes at their other ends are alive (one call per peer process, not per tunnel): a peer that does
/// not answer three checks in a row has its tunnels closed with <see cref="TunnelCloseReason.PeerDied"/>.
/// </summary>
internal sealed partial class LocalTunnels : IAsyncDisposable
{
    private readonly ConcurrentDictionary<Guid, TunnelEnd> _ends = new();
    private readonly ConcurrentDictionary<string, int> _missed = new(StringComparer.Ordinal);
    private readonly RecentIds _closed = new();
    private readonly RecentIds _abandoned = new();
    private readonly IGrainFactory _grains;
    private readonly LocalMembers _members;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _keepAlive;

    public LocalTunnels(IGrainFactory grains, LocalMembers members, TunnelOptions options, ILogger<LocalTunnels> logger)
    {
        options.Validate();
        _grains = grains;
        _members = members;
        _logger = logger;
        Options = options;
        _keepAlive = Task.Run(KeepAliveAsync);
    }

    public TunnelOptions Options { get; }

    /// <summary>Where this process's member host is reached; set by the process's <see cref="IIrisClient"/>.</summary>
    public Func<MemberSilo>? Self { get; set; }

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

    /// <summary>A member of <paramref name="cluster"/> here is offered a tunnel: its handler starts serving it, or
    /// refuses.</summary>
    public async Task<TunnelAccepted> AcceptAsync(string cluster, Guid id, MemberSilo opener, int openerWindow, DateTime deadlineUtc)
    {
        if (DateTime.UtcNow > deadlineUtc)
        {
            throw new IrisTimeoutException(cluster, TimeSpan.Zero);
        }

        var member = _members.Pick(cluster) ?? throw new NoMembersException(cluster);
        var self = Self?.Invoke() ?? throw new InvalidOperationException("This process's member host is not known yet.");
        var end = new TunnelEnd(this, _grains, Options, cluster, id, opener: false);
        if (!_ends.TryAdd(end.Id, end))
        {
            // The opener's call was retried: its first attempt is being served.
            throw new InvalidOperationException($"Tunnel {id} is already open here.");
        }

        IrisMetrics.TunnelsChanged(1);
        member.Tunnels[end.Id] = end;
        end.Connect(opener, openerWindow, member);

        // The handler's first steps run on the thread pool, not in the caller's (grain) context; a handler that
        // throws before its first await refuses.
        var handler = await Task.Factory.StartNew(
            () =>
            {
                try
                {
                    return member.Handler.HandleTunnelAsync(end, end.Closing);
                }
                catch (Exception e)
                {
                    return Task.FromException(e);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.DenyChildAttach,
            TaskScheduler.Default).ConfigureAwait(false);
        if (handler.IsFaulted)
        {
            var reason = handler.Exception!.InnerException!.Message;
            end.End(TunnelCloseReason.Refused, reason, notifyPeer: false);
            throw new TunnelClosedException(cluster, TunnelCloseReason.Refused, reason);
        }

        _ = ServeAsync(end, handler);
        return new TunnelAccepted(self, Options.WindowBytes);
    }

    /// <summary>Waits for a member's handler to finish, then closes its tunnel gracefully if still open.</summary>
    private async Task ServeAsync(TunnelEnd end, Task handler)
    {
        try
        {
            await handler.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogHandlerFailed(_logger, e, end.Cluster, end.Id);
        }
        catch (OperationCanceledException)
        {
            // The tunnel closed under it.
        }

        await end.DisposeAsync().ConfigureAwait(false);
    }

    public TunnelStatus OnData(Guid id, TunnelFrame[] frames) =>
        _ends.TryGetValue(id, out var end) ? end.OnData(frames) : StatusOf(id);

    public TunnelStatus OnCredit(Guid id, long grantedTotal)
    {
        if (!_ends.TryGetValue(id, out var end))
        {
            return StatusOf(id);
        }

        end.OnCredit(grantedTotal);
        return TunnelStatus.Open;
    }

    public void OnPeerFailed(Guid id, TunnelCloseReason reason, string? detail)
    {
        if (_ends.TryGetValue(id, out var end))
        {
            end.End(reason, detail, notifyPeer: false);
        }
    }

    public TunnelStatus[] Statuses(Guid[] ids) => [.. ids.Select(id => _ends.ContainsKey(id) ? TunnelStatus.Open : StatusOf(id))];

    /// <summary>Called by an end as it ends.</summary>
    public void Forget(TunnelEnd end, TunnelCloseReason reason)
    {
        if (reason is TunnelCloseReason.Closed or TunnelCloseReason.ClosedByPeer)
        {
            _closed.Add(end.Id);
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
        _ => TunnelCloseReason.PeerDied,
    };

    private TunnelStatus StatusOf(Guid id) =>
        _closed.Contains(id) ? TunnelStatus.Closed : _abandoned.Contains(id) ? TunnelStatus.Abandoned : TunnelStatus.Unknown;

    private async Task KeepAliveAsync()
    {
        using var timer = new PeriodicTimer(Options.KeepAliveInterval);
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

    private async Task CheckAsync(MemberSilo peer, TunnelEnd[] ends)
    {
        try
        {
            var statuses = await peer.Call(_grains, host => host.TunnelPing([.. ends.Select(e => e.PeerId)])).WaitAsync(Options.KeepAliveTimeout, _stopping.Token).ConfigureAwait(false);
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
            // Missed, whatever the error: a client reports "silo unavailable" for calls that went by way of a gateway
            // that died, so only three misses in a row say the peer is gone.
            if (_missed.AddOrUpdate(peer.Id, 1, (_, n) => n + 1) >= 3)
            {
                Fail(peer, ends, $"no answer to three keep-alive checks ({e.GetType().Name}: {e.Message})");
            }
        }
    }

    private void Fail(MemberSilo peer, TunnelEnd[] ends, string detail)
    {
        _missed.TryRemove(peer.Id, out _);
        LogPeerDied(_logger, peer.Id, ends.Length, detail);
        foreach (var end in ends)
        {
            end.End(TunnelCloseReason.PeerDied, detail, notifyPeer: false);
        }
    }

    /// <summary>Ends every tunnel of this process and tells the peers (the process is stopping), waiting a moment for
    /// them to hear it: a peer that did not would go on calling a process that is gone.</summary>
    public async Task CloseAllAsync()
    {
        var told = _ends.Values.Select(end => end.EndAsync(TunnelCloseReason.PeerDied, "its process is stopping", notifyPeer: true)).ToArray();
        await Task.WhenAll(told).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _keepAlive.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await CloseAllAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Tunnel handler of cluster '{Cluster}' failed on tunnel {Tunnel}")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string cluster, Guid tunnel);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Peer {Peer} of {Count} tunnels is gone: {Detail}")]
    private static partial void LogPeerDied(ILogger logger, string peer, int count, string detail);
}
