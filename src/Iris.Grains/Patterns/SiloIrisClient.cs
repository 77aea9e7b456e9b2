using Iris.Members;
using Iris.Tunnels;
using Microsoft.Extensions.Hosting;

namespace Iris.Patterns;

/// <summary>
/// <see cref="IIrisClient"/>: members and subscribers of this process sit behind its member host (a grain pinned to
/// this silo, or an observer of this Orleans client) and are registered with their name's rendezvous grain, renewed
/// well within the lease while they live. Sending goes through the cluster and topic grains.
/// </summary>
internal abstract class IrisClientBase : IIrisClient, IHostedService
{
    private readonly IGrainFactory _grains;
    private readonly LocalMembers _members;
    private readonly LocalTunnels _tunnels;
    private readonly TimeSpan _renewal;
    private readonly CancellationTokenSource _stopping = new();
    private Task _renewals = Task.CompletedTask;

    protected IrisClientBase(IGrainFactory grains, LocalMembers members, LocalTunnels tunnels, TimeSpan renewal)
    {
        _grains = grains;
        _members = members;
        _tunnels = tunnels;
        _renewal = renewal;
        _tunnels.Self = () => Entry(0);
    }

    protected IGrainFactory Grains => _grains;

    public async Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberLimits? limits = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentNullException.ThrowIfNull(handler);
        var member = _members.Add(cluster, handler, limits ?? new MemberLimits());
        var keys = MemberDirectory.ClusterKeys(cluster);
        await RegisterAllAsync(keys, Entry(_members.Capacity(cluster))).WaitAsync(cancellationToken).ConfigureAwait(false);
        await JoinTreesAsync(keys).ConfigureAwait(false);

        // Every silo keeps what the rendezvous said for a moment: past it, all of them see the new member.
        await Task.Delay(MemberDirectory.CacheTime, cancellationToken).ConfigureAwait(false);
        return new Registration(async () =>
        {
            if (_members.Remove(cluster, member))
            {
                await RegisterAllAsync(keys, Entry(_members.Capacity(cluster))).ConfigureAwait(false);
            }
            else
            {
                await Task.WhenAll(keys.Select(key => Rendezvous(key).Unregister(Entry(0).Id))).ConfigureAwait(false);
                await LeaveTreesAsync(keys).ConfigureAwait(false);
            }

            foreach (var key in keys)
            {
                Forget(key);
            }
        });
    }

    public async Task<IAsyncDisposable> SubscribeAsync(string topic, ITopicHandler handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(handler);
        _members.Subscribe(topic, handler);
        var keys = MemberDirectory.TopicKeys(topic);
        await RegisterAllAsync(keys, Entry(1)).WaitAsync(cancellationToken).ConfigureAwait(false);
        await JoinTreesAsync(keys).ConfigureAwait(false);
        return new Registration(async () =>
        {
            if (!_members.Unsubscribe(topic, handler))
            {
                await Task.WhenAll(keys.Select(key => Rendezvous(key).Unregister(Entry(1).Id))).ConfigureAwait(false);
                await LeaveTreesAsync(keys).ConfigureAwait(false);
            }
        });
    }

    public async Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // The silo taking the call may die with it: try through another one, within the caller's time.
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new IrisTimeoutException(cluster, timeout);
            }

            try
            {
                return await _grains.GetGrain<IClusterGrain>(cluster).Request(request, left).WaitAsync(left, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new IrisTimeoutException(cluster, timeout);
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or Orleans.Runtime.Messaging.ConnectionFailedException)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public Task BroadcastAsync(string cluster, byte[] message, CancellationToken cancellationToken = default) =>
        _grains.GetGrain<IClusterGrain>(cluster).Broadcast(message).WaitAsync(cancellationToken);

    public Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default) =>
        _grains.GetGrain<ITopicGrain>(topic).Publish(message).WaitAsync(cancellationToken);

    public async Task<ITunnel> OpenTunnelAsync(string cluster, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        var end = _tunnels.Create(cluster);
        try
        {
            var accepted = await _grains.GetGrain<IClusterTunnelGrain>(cluster)
                .OpenTunnel(end.Id, Entry(0), _tunnels.Options.WindowBytes, timeout)
                .WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            end.Connect(accepted.Member, accepted.WindowBytes);
            return end;
        }
        catch (TimeoutException)
        {
            _tunnels.Abandon(end);
            throw new IrisTimeoutException(cluster, timeout);
        }
        catch (Exception)
        {
            _tunnels.Abandon(end);
            throw;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _renewals = Task.Run(RenewAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // While Orleans still runs, so the other ends hear of it.
        await _tunnels.CloseAllAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _renewals.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>This process's rendezvous entry, offering <paramref name="capacity"/>.</summary>
    protected abstract MemberSilo Entry(double capacity);

    /// <summary>Puts this process in the Scribe trees of a name's rendezvous keys, if it can be in trees.</summary>
    protected virtual Task JoinTreesAsync(string[] keys) => Task.CompletedTask;

    /// <summary>Takes this process out of those trees.</summary>
    protected virtual Task LeaveTreesAsync(string[] keys) => Task.CompletedTask;

    /// <summary>Drops what this process remembers of a name's members, if anything.</summary>
    protected virtual void Forget(string key)
    {
    }

    private IRendezvousGrain Rendezvous(string key) => _grains.GetGrain<IRendezvousGrain>(key);

    private Task RegisterAllAsync(string[] keys, MemberSilo entry) => Task.WhenAll(keys.Select(key => Rendezvous(key).Register(entry)));

    private async Task RenewAsync()
    {
        using var timer = new PeriodicTimer(_renewal);
        while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
        {
            try
            {
                _members.SampleCpu();
                foreach (var cluster in _members.Clusters)
                {
                    await RegisterAllAsync(MemberDirectory.ClusterKeys(cluster), Entry(_members.Capacity(cluster))).ConfigureAwait(false);
                }

                foreach (var topic in _members.Topics)
                {
                    await RegisterAllAsync(MemberDirectory.TopicKeys(topic), Entry(1)).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OrleansException or TimeoutException)
            {
                // The cluster is busy or reconfiguring; the lease outlives several renewals, next one then.
            }
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

/// <summary><see cref="IIrisClient"/> in a silo: members behind the silo's member host grain, and the silo in the
/// Scribe trees of the names it has members of.</summary>
internal sealed class SiloIrisClient(
    IGrainFactory grains, LocalMembers members, LocalTunnels tunnels, MemberDirectory directory, ILocalSiloDetails silo, ScribeDissemination trees)
    : IrisClientBase(grains, members, tunnels, TimeSpan.FromSeconds(10))
{
    protected override MemberSilo Entry(double capacity) => new(silo.SiloAddress, capacity);

    protected override Task JoinTreesAsync(string[] keys) => trees.JoinAsync(keys);

    protected override Task LeaveTreesAsync(string[] keys) => trees.LeaveAsync(keys);

    protected override void Forget(string key) => directory.Forget(key);
}

/// <summary>
/// <see cref="IIrisClient"/> in an Orleans client: members behind an observer of this client, renewed every few
/// seconds so that a client that dies is dropped within a short lease, not after Orleans' client-drop timeout.
/// </summary>
internal sealed class ClientIrisClient(IGrainFactory grains, LocalMembers members, LocalTunnels tunnels)
    : IrisClientBase(grains, members, tunnels, TimeSpan.FromSeconds(5))
{
    private readonly string _id = "client/" + Guid.NewGuid().ToString("N");

    // Orleans holds observer objects only weakly: this strong reference keeps the client's members reachable.
    private readonly MemberHost _target = new(members, tunnels, grains);
    private IMemberObserver? _observer;

    private IMemberObserver Observer => _observer ??= Grains.CreateObjectReference<IMemberObserver>(_target);

    protected override MemberSilo Entry(double capacity) => new(null, capacity) { Observer = Observer, Id = _id };
}
