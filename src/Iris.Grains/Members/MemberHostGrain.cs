using Iris.Placement;
using Orleans.Concurrency;

namespace Iris.Members;

/// <summary>The door to one silo's members: requests, broadcasts and publications for them arrive here.</summary>
internal interface IMemberHostGrain : IGrainWithStringKey
{
    Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc);

    Task Broadcast(string cluster, byte[] message);

    Task Publish(string topic, byte[] message);
}

/// <summary>One per silo, on that silo (key: the silo's address); reentrant, so members run concurrently within
/// their limits.</summary>
[SiloPinned]
[Reentrant]
internal sealed class MemberHostGrain(LocalMembers members) : Grain, IMemberHostGrain
{
    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => members.RequestAsync(cluster, request, deadlineUtc);

    public Task Broadcast(string cluster, byte[] message) => members.BroadcastAsync(cluster, message);

    public Task Publish(string topic, byte[] message) => members.PublishAsync(topic, message);
}
