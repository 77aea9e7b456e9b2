using Iris.Patterns;
using Iris.Placement;
using Iris.Tunnels;
using Orleans.Concurrency;

namespace Iris.Members;

/// <summary>
/// The door to the members of one process: requests, broadcasts, publications and tunnels for them arrive here. All
/// calls interleave, so members run requests concurrently (within their <see cref="MemberLimits"/>) instead of one by
/// one, and tunnel traffic never waits behind a request.
/// </summary>
internal interface IMemberHost : IAddressable
{
    [AlwaysInterleave]
    Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc);

    /// <summary>Delivers a broadcast to this process's members of <paramref name="cluster"/> and passes it on to
    /// <paramref name="forward"/> (see <see cref="Dissemination"/>); a repeated <paramref name="id"/> is not
    /// delivered again.</summary>
    [AlwaysInterleave]
    Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward);

    /// <summary>Delivers a publication to this process's subscribers and passes it on, like a broadcast.</summary>
    [AlwaysInterleave]
    Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward);

    /// <summary>Offers a tunnel to a member of <paramref name="cluster"/> here; its handler accepts or refuses.</summary>
    [AlwaysInterleave]
    Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberSilo opener, int openerWindow, DateTime deadlineUtc);

    /// <summary>Frames for the end of tunnel <paramref name="id"/> here. A call unanswered after 8 s is made again
    /// (see <see cref="TunnelEnd"/>), well before Orleans' default 30 s.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelData(Guid id, TunnelFrame[] frames);

    /// <summary>The other end's application has consumed <paramref name="grantedTotal"/> bytes since the tunnel opened:
    /// the end here may be that much past its first window.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelCredit(Guid id, long grantedTotal);

    /// <summary>The other end failed (not a graceful close): the end here closes with the reason.</summary>
    [AlwaysInterleave]
    Task TunnelFailed(Guid id, TunnelCloseReason reason, string? detail);

    /// <summary>Keep-alive of a process with tunnels to this one: the status here of each of its tunnels.</summary>
    [AlwaysInterleave]
    Task<TunnelStatus[]> TunnelPing(Guid[] ids);
}

/// <summary>A silo's member host: a grain pinned to the silo.</summary>
internal interface IMemberHostGrain : IMemberHost, IGrainWithStringKey
{
    /// <summary>A broadcast (or, with <paramref name="topic"/>, a publication) coming down the Scribe tree of
    /// <paramref name="rendezvousKey"/>; returns the member silos reached here and below (see
    /// <see cref="ScribeDissemination"/>).</summary>
    [AlwaysInterleave]
    Task<string[]> SendDown(bool topic, string name, string rendezvousKey, byte[] message, Guid id);
}

/// <summary>An Orleans client's member host: an observer the client creates.</summary>
internal interface IMemberObserver : IMemberHost, IGrainObserver;

/// <summary>
/// The member host of a process, whichever kind it is: in an Orleans client it is the observer object itself (Orleans
/// holds observers weakly: the client keeps a strong reference); in a silo the member host grain forwards to it.
/// Clients are leaves of a dissemination tree: they are never handed a share to pass on.
/// </summary>
internal sealed class MemberHost(LocalMembers members, LocalTunnels tunnels, IGrainFactory grains) : IMemberObserver
{
    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => members.RequestAsync(cluster, request, deadlineUtc);

    public Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward) =>
        Task.WhenAll(
            Dissemination.SendAsync(forward, (next, share) => next.Call(grains, host => host.Broadcast(cluster, message, id, share))),
            members.BroadcastAsync(cluster, message, id));

    public Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward) =>
        Task.WhenAll(
            Dissemination.SendAsync(forward, (next, share) => next.Call(grains, host => host.Publish(topic, message, id, share))),
            members.PublishAsync(topic, message, id));

    public Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberSilo opener, int openerWindow, DateTime deadlineUtc) =>
        tunnels.AcceptAsync(cluster, id, opener, openerWindow, deadlineUtc);

    public Task<TunnelStatus> TunnelData(Guid id, TunnelFrame[] frames) => Task.FromResult(tunnels.OnData(id, frames));

    public Task<TunnelStatus> TunnelCredit(Guid id, long grantedTotal) => Task.FromResult(tunnels.OnCredit(id, grantedTotal));

    public Task TunnelFailed(Guid id, TunnelCloseReason reason, string? detail)
    {
        tunnels.OnPeerFailed(id, reason, detail);
        return Task.CompletedTask;
    }

    public Task<TunnelStatus[]> TunnelPing(Guid[] ids) => Task.FromResult(tunnels.Statuses(ids));
}

/// <summary>One per silo, on that silo (key: the silo's address); reentrant, so members run concurrently within
/// their limits.</summary>
[SiloPinned]
[Reentrant]
internal sealed class MemberHostGrain(LocalMembers members, LocalTunnels tunnels, ScribeDissemination trees) : Grain, IMemberHostGrain
{
    private MemberHost? _host;

    private MemberHost Host => _host ??= new MemberHost(members, tunnels, GrainFactory);

    public Task<byte[]> Request(string cluster, byte[] request, DateTime deadlineUtc) => Host.Request(cluster, request, deadlineUtc);

    public Task Broadcast(string cluster, byte[] message, Guid id, MemberSilo[] forward) => Host.Broadcast(cluster, message, id, forward);

    public Task Publish(string topic, byte[] message, Guid id, MemberSilo[] forward) => Host.Publish(topic, message, id, forward);

    public Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberSilo opener, int openerWindow, DateTime deadlineUtc) =>
        Host.OpenTunnel(cluster, id, opener, openerWindow, deadlineUtc);

    public Task<TunnelStatus> TunnelData(Guid id, TunnelFrame[] frames) => Host.TunnelData(id, frames);

    public Task<TunnelStatus> TunnelCredit(Guid id, long grantedTotal) => Host.TunnelCredit(id, grantedTotal);

    public Task TunnelFailed(Guid id, TunnelCloseReason reason, string? detail) => Host.TunnelFailed(id, reason, detail);

    public Task<TunnelStatus[]> TunnelPing(Guid[] ids) => Host.TunnelPing(ids);

    public Task<string[]> SendDown(bool topic, string name, string rendezvousKey, byte[] message, Guid id) =>
        trees.SendDownAsync(topic, name, rendezvousKey, message, id);
}
