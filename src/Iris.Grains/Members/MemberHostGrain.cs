using Iris.Placement;
using Orleans.Concurrency;

namespace Iris.Members;

/// <summary>The door to the members of one process: requests, broadcasts and publications for them arrive here.</summary>
internal interface IMemberHost : IAddressable
{
    Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc);

    Task Broadcast(string cluster, byte[] message);

    Task Publish(string topic, byte[] message);
}

/// <summary>A silo's member host: a grain pinned to the silo.</summary>
internal interface IMemberHostGrain : IMemberHost, IGrainWithStringKey;

/// <summary>An Orleans client's member host: an observer the client creates. Its calls interleave, so the client's
/// members run requests concurrently (within their <see cref="MemberLimits"/>) instead of one by one.</summary>
internal interface IMemberObserver : IGrainObserver
{
    [AlwaysInterleave]
    Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc);

    [AlwaysInterleave]
    Task Broadcast(string cluster, byte[] message);

    [AlwaysInterleave]
    Task Publish(string topic, byte[] message);
}

/// <summary>The observer object in an Orleans client, in front of the client's members.</summary>
internal sealed class MemberObserver(LocalMembers members) : IMemberObserver
{
    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => members.RequestAsync(cluster, request, deadlineUtc);

    public Task Broadcast(string cluster, byte[] message) => members.BroadcastAsync(cluster, message);

    public Task Publish(string topic, byte[] message) => members.PublishAsync(topic, message);
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
