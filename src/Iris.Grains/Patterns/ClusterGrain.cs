using Iris.Members;
using Orleans.Concurrency;

namespace Iris.Patterns;

/// <summary>
/// The entry point of a cluster on whichever silo is called: a local, stateless worker. A request goes straight to
/// one member silo's member host; a broadcast to every member silo's.
/// </summary>
[StatelessWorker]
internal sealed class ClusterGrain(MemberDirectory directory, IGrainFactory grains) : Grain, IClusterGrain
{
    private string Cluster => this.GetPrimaryKeyString();

    public async Task<byte[]> Request(byte[] request, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var members = await directory.MembersAsync(MemberDirectory.ClusterKey(Cluster));
        if (members.Length == 0)
        {
            throw new NoMembersException(Cluster);
        }

        var member = directory.Choose(members);
        using var _ = directory.Track(member.Id);
        try
        {
            return await member.Host(grains).Request(Cluster, request, deadline).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new IrisTimeoutException(Cluster, timeout);
        }
    }

    public async Task Broadcast(byte[] message)
    {
        var members = await directory.MembersAsync(MemberDirectory.ClusterKey(Cluster));
        await Task.WhenAll(members.Select(m => m.Host(grains).Broadcast(Cluster, message)));
    }
}

/// <summary>The entry point of a topic on whichever silo is called.</summary>
[StatelessWorker]
internal sealed class TopicGrain(MemberDirectory directory, IGrainFactory grains) : Grain, ITopicGrain
{
    public async Task Publish(byte[] message)
    {
        var topic = this.GetPrimaryKeyString();

        // Ask the rendezvous directly, not the cache: a subscription made before this call must receive it.
        directory.Forget(MemberDirectory.TopicKey(topic));
        var subscribers = await directory.MembersAsync(MemberDirectory.TopicKey(topic));
        await Task.WhenAll(subscribers.Select(s => s.Host(grains).Publish(topic, message)));
    }
}
