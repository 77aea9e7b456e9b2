using Iris.Calls;
using Iris.Grains.Rendezvous;
using Iris.Protocol;
using Iris.Ring;
using Iris.Tests.Support;
using Orleans.Core.Internal;
using Orleans.Serialization;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Tests.TestClusters;

/// <summary>A rendezvous activation that does not know every member registered before it accepted a broadcast: the
/// state two activations of one key leave while Orleans' grain directory and the ring settle.</summary>
public sealed class RendezvousActivationTests
{
    [Fact]
    public async Task A_young_rendezvous_hands_a_broadcast_to_a_member_that_another_activation_saved_after_it_read_the_list()
    {
        await using var cluster = await IrisTestCluster.DeployAsync(3);
        var audience = Audience.Cluster("young");
        var key = audience.RendezvousKey(0);
        var rendezvous = cluster.Client.GetGrain<IRendezvousGrain>(key);
        var member = new BroadcastCountingEcho();
        await using var registration = await cluster.Iris().RegisterAsync("young", member);
        Assert.Single(await rendezvous.GetMembers());

        var records = await cluster.Silos[0].Services().GetRequiredService<IrisOverlay>().GetRecordsAsync(CancellationToken.None);
        var recordKey = RendezvousGrain.RecordKeyOf(key);
        var withMember = (await records.ReadAsync(recordKey))!;
        var noMembers = cluster.Silos[0].Services().GetRequiredService<Serializer<MemberEndpoint[]>>().SerializeToArray([]);

        // The next activation reads a list without the member, as an activation that read the record before the other
        // one saved its registration. The client renews every few seconds: a renewal that reaches the new activation
        // before it is asked makes it know the member, and the state is made again.
        for (var attempt = 1; ; attempt++)
        {
            await WriteAsync(records, recordKey, noMembers);
            await rendezvous.Cast<IGrainManagementExtension>().DeactivateOnIdle();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            while ((await rendezvous.GetMembers()).Length > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            if ((await rendezvous.GetMembers()).Length == 0)
            {
                break;
            }

            Assert.True(attempt < 5, "no new activation without the member in 5 attempts");
        }

        // ... which the other activation then saves.
        await WriteAsync(records, recordKey, withMember.Data);

        await rendezvous.Disseminate(audience, [new Disseminated(CallIds.Next(), [1])]);
        await Eventually.SettlesAtAsync(() => member.Broadcasts, 1, "broadcast accepted by the activation that had not seen the member", TimeSpan.FromSeconds(10));
    }

    /// <summary>Writes <paramref name="data"/> over whatever version the record has now.</summary>
    private static async Task WriteAsync(Iris.Overlay.Records.RecordStore records, Iris.Overlay.NodeKey key, byte[] data)
    {
        while (true)
        {
            var current = await records.ReadAsync(key);
            if ((await records.CompareAndSwapAsync(key, current?.Version ?? 0, data)).Success)
            {
                return;
            }
        }
    }
}
