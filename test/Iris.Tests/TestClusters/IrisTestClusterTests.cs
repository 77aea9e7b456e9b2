using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Iris.Tests.TestClusters;

/// <summary>Orleans' own test cluster, four silos on the overlay membership (not the test cluster's), and a client.</summary>
public sealed class IrisTestClusterTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await IrisTestCluster.DeployAsync(4);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Four_silos_form_one_cluster_on_the_overlay_and_serve_requests_from_a_client()
    {
        var hosts = await _cluster.Client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        Assert.Equal(4, hosts.Count);
        Assert.Equal([1, 2], await _cluster.Client.GetGrain<IClusterGrain>("echo").Request([1, 2], TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<NoMembersException>(() => _cluster.Client.GetGrain<IClusterGrain>("nobody").Request([], TimeSpan.FromSeconds(5)));

        var iris = _cluster.Client.ServiceProvider.GetRequiredService<IIrisClient>();
        var received = 0;
        await using (await iris.SubscribeAsync("ticks", new Subscriber(() => Interlocked.Increment(ref received))))
        {
            await _cluster.Client.GetGrain<ITopicGrain>("ticks").Publish([1]);
        }

        Assert.Equal(1, received);
    }

    [Fact]
    public async Task Service_continues_when_a_silo_is_killed()
    {
        var victim = _cluster.Silos[2];
        await _cluster.KillSiloAsync(victim);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var served = 0;
        while (served < 20)
        {
            Assert.True(DateTime.UtcNow < deadline, "service did not continue after the kill");
            try
            {
                await _cluster.Client.GetGrain<IClusterGrain>("echo").Request([7], TimeSpan.FromSeconds(2));
                served++;
            }
            catch (IrisException)
            {
                await Task.Delay(100);
            }
        }
    }

    private sealed class Subscriber(Action onMessage) : ITopicHandler
    {
        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            onMessage();
            return Task.CompletedTask;
        }
    }
}
