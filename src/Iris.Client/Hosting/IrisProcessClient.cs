using Iris.Balancing;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Dissemination;
using Iris.Members;
using Iris.Protocol;
using Iris.Requests;
using Iris.Tunnels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>
/// <see cref="IIrisClient"/> for any Iris process: members and subscribers of this process sit behind its member host
/// (a grain pinned to its silo, or an observer of its Orleans client) and are registered with their name's rendezvous
/// grains, renewed well within the lease while they live. Requests and tunnel opens go straight to a member's host
/// (<see cref="RequestSender"/>), broadcasts and publications to a rendezvous (<see cref="DisseminationSender"/>).
/// </summary>
internal abstract class IrisProcessClient : IIrisClient, IHostedService
{
    /// <summary>How long a leaving member goes on serving after it stopped being offered: the time every process may
    /// keep a member list, and as long again for requests chosen from such a list that are on their way.</summary>
    public static readonly TimeSpan LeaveGrace = 2 * MemberDirectory.CacheTime;

    private readonly IrisServices _services;
    private readonly TimeSpan _renewal;

    // Registering, renewing and leaving write the same rendezvous entries: one at a time, so a renewal computed before
    // a member started leaving never lands after its unregistration.
    private readonly SemaphoreSlim _entries = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private Task _renewals = Task.CompletedTask;

    protected IrisProcessClient(IrisServices services, TimeSpan renewal)
    {
        _services = services;
        _renewal = renewal;
        Host = new MemberHost(services.Members, services.Tunnels, services.Grains, services.Logger);
        services.Tunnels.Self = () => Entry(0, idempotent: false);
    }

    /// <summary>The door to this process's members: requests from this process go to it directly.</summary>
    protected MemberHost Host { get; }

    protected IGrainFactory Grains => _services.Grains;

    private LocalMembers Members => _services.Members;

    public async Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(options);
        var member = Members.Add(cluster, handler, options);
        var audience = Audience.Cluster(cluster);
        try
        {
            await WithEntriesAsync(() => RegisterAllAsync(audience, EntryFor(cluster)), cancellationToken).ConfigureAwait(false);
            await JoinTreesAsync(audience).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Not registered: the member must not linger here, renewed with no handle to remove it.
            member.Leaving = true;
            if (!Members.Remove(cluster, member))
            {
                await WithEntriesAsync(() => UnregisterAllAsync(audience), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            throw;
        }

        _services.Directory.Forget(audience);

        // Every process keeps what the rendezvous said for a moment: past it, all of them see the new member.
        await Task.Delay(MemberDirectory.CacheTime, _services.Time, cancellationToken).ConfigureAwait(false);

        // And this one has the new list at hand for the requests its registrant sends next.
        await _services.Directory.RefreshAsync(audience, MemberDirectory.SlowAnswer).ConfigureAwait(false);
        return new Registration(() => LeaveAsync(audience, member));
    }

    /// <summary>
    /// Leaves without costing a request: the member stops being offered (the rendezvous drop this process, or get its
    /// lower capacity), goes on serving while other processes may still choose it from their lists, and only then is
    /// removed. A request that reaches this process after that is answered "not here" and goes to the next member.
    /// </summary>
    private async Task LeaveAsync(Audience audience, Member member)
    {
        var left = false;
        try
        {
            await WithEntriesAsync(
                () =>
                {
                    member.Leaving = true;
                    return Members.Offers(audience.Name) ? RegisterAllAsync(audience, EntryFor(audience.Name)) : UnregisterAllAsync(audience);
                },
                CancellationToken.None).ConfigureAwait(false);
            _services.Directory.Forget(audience);
            await Task.Delay(LeaveGrace, _services.Time).ConfigureAwait(false);
        }
        finally
        {
            // Whatever happened to the rendezvous, the member goes; its lease ends there if the unregistration failed.
            member.Leaving = true;
            left = !Members.Remove(audience.Name, member);
            _services.Directory.Forget(audience);
        }

        if (left)
        {
            await LeaveTreesAsync(audience).ConfigureAwait(false);
        }
    }

    private async Task WithEntriesAsync(Func<Task> write, CancellationToken cancellationToken)
    {
        await _entries.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await write().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _entries.Release();
        }
    }

    public async Task<IAsyncDisposable> SubscribeAsync(string topic, ITopicHandler handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(handler);
        Members.Subscribe(topic, handler);
        var audience = Audience.Topic(topic);
        try
        {
            await WithEntriesAsync(() => RegisterAllAsync(audience, Entry(1, idempotent: false)), cancellationToken).ConfigureAwait(false);
            await JoinTreesAsync(audience).ConfigureAwait(false);
        }
        catch (Exception)
        {
            await UnsubscribeAsync(audience, handler).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }

        return new Registration(() => UnsubscribeAsync(audience, handler));
    }

    private async Task UnsubscribeAsync(Audience audience, ITopicHandler handler)
    {
        if (!Members.Unsubscribe(audience.Name, handler))
        {
            await WithEntriesAsync(() => UnregisterAllAsync(audience), CancellationToken.None).ConfigureAwait(false);
            await LeaveTreesAsync(audience).ConfigureAwait(false);
        }
    }

    public Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _services.Requests.RequestAsync(cluster, CallIds.Next(), request, timeout, isolate: true, cancellationToken);

    public Task BroadcastAsync(string cluster, byte[] message, CancellationToken cancellationToken = default) =>
        _services.Dissemination.SendAsync(Audience.Cluster(cluster), message, cancellationToken);

    public Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default) =>
        _services.Dissemination.SendAsync(Audience.Topic(topic), message, cancellationToken);

    public async Task<ITunnel> OpenTunnelAsync(string cluster, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        var tunnels = _services.Tunnels;
        var end = tunnels.Create(cluster);
        try
        {
            var accepted = await _services.Requests.OpenTunnelAsync(
                cluster, end.Id, Entry(0, idempotent: false), tunnels.Options.WindowBytes, end.Expect, timeout, cancellationToken).ConfigureAwait(false);
            end.Connect(accepted.Member, accepted.WindowBytes);
            return end;
        }
        catch (Exception)
        {
            // The member whose answer was lost (if any) learns from its keep-alive that the opener gave up.
            tunnels.Abandon(end);
            throw;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _services.Requests.ServeHere(Entry(0, idempotent: false).Id, Host);
        _renewals = Task.Run(RenewAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // While Orleans still runs, so the other ends hear of it. A stop given no time (its token cancelled already) is
        // told as a death.
        await _services.Tunnels.CloseAllAsync(graceful: !cancellationToken.IsCancellationRequested).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _renewals.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>This process's rendezvous entry, offering <paramref name="capacity"/>.</summary>
    protected abstract MemberEndpoint Entry(double capacity, bool idempotent);

    /// <summary>Puts this process in the Scribe trees of a name's rendezvous keys, if it can be in trees.</summary>
    protected virtual Task JoinTreesAsync(Audience audience) => Task.CompletedTask;

    /// <summary>Takes this process out of those trees.</summary>
    protected virtual Task LeaveTreesAsync(Audience audience) => Task.CompletedTask;

    private MemberEndpoint EntryFor(string cluster) => Entry(Members.Capacity(cluster), Members.Idempotent(cluster));

    private IRendezvousGrain Rendezvous(string key) => Grains.GetGrain<IRendezvousGrain>(key);

    private Task RegisterAllAsync(Audience audience, MemberEndpoint entry) =>
        Task.WhenAll(audience.RendezvousKeys().Select(key => Rendezvous(key).Register(entry)));

    private Task UnregisterAllAsync(Audience audience)
    {
        var id = Entry(0, idempotent: false).Id;
        return Task.WhenAll(audience.RendezvousKeys().Select(key => Rendezvous(key).Unregister(id)));
    }

    /// <summary>Renews every registration of this process each period, all at once and each bounded by the period, so
    /// that one slow rendezvous (its silo just died) never lets the others' leases lapse.</summary>
    private async Task RenewAsync()
    {
        using var timer = new PeriodicTimer(_renewal, _services.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await WithEntriesAsync(
                        () => Task.WhenAll(
                            Members.Clusters.Where(Members.Offers).Select(cluster => RenewOneAsync(Audience.Cluster(cluster), EntryFor(cluster)))
                                .Concat(Members.Topics.Select(topic => RenewOneAsync(Audience.Topic(topic), Entry(1, idempotent: false))))),
                        _stopping.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stopping.IsCancellationRequested)
                {
                    // The cluster is busy or reconfiguring; the lease outlives several renewals, next one then.
                    Log.RenewalFailed(_services.Logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task RenewOneAsync(Audience audience, MemberEndpoint entry)
    {
        try
        {
            await RegisterAllAsync(audience, entry).WaitAsync(_renewal, _services.Time, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.RenewalFailed(_services.Logger, $"{audience}: {e.Message}");
        }
    }

    private sealed class Registration(Func<Task> dispose) : IAsyncDisposable
    {
        private int _disposed;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await dispose().ConfigureAwait(false);
            }
        }
    }
}
