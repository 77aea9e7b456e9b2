using Iris.Members;
using Microsoft.Extensions.Hosting;

namespace Iris.Patterns;

/// <summary>
/// <see cref="IIrisClient"/> inside a silo: members and subscribers are hosted by this silo's member host and
/// registered with their name's rendezvous grain, renewed well within its lease while they live.
/// </summary>
internal sealed class SiloIrisClient(IGrainFactory grains, LocalMembers members, MemberDirectory directory, ILocalSiloDetails silo) : IIrisClient, IHostedService
{
    private static readonly TimeSpan Renewal = TimeSpan.FromSeconds(10);
    private readonly CancellationTokenSource _stopping = new();
    private Task _renewals = Task.CompletedTask;

    public async Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberLimits? limits = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        ArgumentNullException.ThrowIfNull(handler);
        var member = members.Add(cluster, handler, limits ?? new MemberLimits());
        await Rendezvous(MemberDirectory.ClusterKey(cluster)).Register(silo.SiloAddress, members.Capacity(cluster)).ConfigureAwait(false);

        // Every silo keeps what the rendezvous said for a moment: past it, all of them see the new member.
        await Task.Delay(MemberDirectory.CacheTime, cancellationToken).ConfigureAwait(false);
        return new Registration(async () =>
        {
            var key = MemberDirectory.ClusterKey(cluster);
            if (members.Remove(cluster, member))
            {
                await Rendezvous(key).Register(silo.SiloAddress, members.Capacity(cluster)).ConfigureAwait(false);
            }
            else
            {
                await Rendezvous(key).Unregister(silo.SiloAddress).ConfigureAwait(false);
            }

            directory.Forget(key);
        });
    }

    public async Task<IAsyncDisposable> SubscribeAsync(string topic, ITopicHandler handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(handler);
        members.Subscribe(topic, handler);
        await Rendezvous(MemberDirectory.TopicKey(topic)).Register(silo.SiloAddress, 1).ConfigureAwait(false);
        return new Registration(async () =>
        {
            if (!members.Unsubscribe(topic, handler))
            {
                await Rendezvous(MemberDirectory.TopicKey(topic)).Unregister(silo.SiloAddress).ConfigureAwait(false);
            }
        });
    }

    public Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        grains.GetGrain<IClusterGrain>(cluster).Request(request, timeout).WaitAsync(cancellationToken);

    public Task BroadcastAsync(string cluster, byte[] message, CancellationToken cancellationToken = default) =>
        grains.GetGrain<IClusterGrain>(cluster).Broadcast(message).WaitAsync(cancellationToken);

    public Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default) =>
        grains.GetGrain<ITopicGrain>(topic).Publish(message).WaitAsync(cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _renewals = Task.Run(RenewAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _renewals.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private IRendezvousGrain Rendezvous(string key) => grains.GetGrain<IRendezvousGrain>(key);

    private async Task RenewAsync()
    {
        using var timer = new PeriodicTimer(Renewal);
        while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
        {
            foreach (var cluster in members.Clusters)
            {
                await Rendezvous(MemberDirectory.ClusterKey(cluster)).Register(silo.SiloAddress, members.Capacity(cluster)).ConfigureAwait(false);
            }

            foreach (var topic in members.Topics)
            {
                await Rendezvous(MemberDirectory.TopicKey(topic)).Register(silo.SiloAddress, 1).ConfigureAwait(false);
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
