using Iris.Patterns;
using Iris.Placement;
using Orleans.Concurrency;

namespace Iris.Members;

/// <summary>The door to the members of one process: requests, broadcasts and publications for them arrive here.</summary>
internal interface IMemberHost : IAddressable
{
    Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc);

    /// <summary>Delivers a broadcast to this process's members of <paramref name="cluster"/> and passes it on to
    /// <paramref name="forward"/> (see <see cref="Patterns.Dissemination"/>); a repeated <paramref name="id"/> is
    /// not delivered again.</summary>
    Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward);

    /// <summary>Delivers a publication to this process's subscribers and passes it on, like a broadcast.</summary>
    Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward);
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
    Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward);

    [AlwaysInterleave]
    Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward);
}

/// <summary>The observer object in an Orleans client, in front of the client's members.</summary>
internal sealed class MemberObserver(LocalMembers members) : IMemberObserver
{
    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => members.RequestAsync(cluster, request, deadlineUtc);

    // Clients are leaves of a dissemination tree: nothing to pass on.
    public Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward) => members.BroadcastAsync(cluster, message, id);

    public Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward) => members.PublishAsync(topic, message, id);
}

/// <summary>One per silo, on that silo (key: the silo's address); reentrant, so members run concurrently within
/// their limits.</summary>
[SiloPinned]
[Reentrant]
internal sealed class MemberHostGrain(LocalMembers members) : Grain, IMemberHostGrain
{
    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => members.RequestAsync(cluster, request, deadlineUtc);

    public Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward) =>
        Task.WhenAll(
            Dissemination.SendAsync(forward, (next, share) => next.Broadcast(GrainFactory, cluster, message, id, share)),
            members.BroadcastAsync(cluster, message, id));

    public Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward) =>
        Task.WhenAll(
            Dissemination.SendAsync(forward, (next, share) => next.Publish(GrainFactory, topic, message, id, share)),
            members.PublishAsync(topic, message, id));
}
