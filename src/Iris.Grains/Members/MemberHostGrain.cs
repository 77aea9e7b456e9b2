using Iris.Grains.Dissemination;
using Iris.Members;
using Iris.Placement;
using Iris.Protocol;
using Iris.Tunnels;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Iris.Grains.Members;

/// <summary>A silo's member host: one per silo, on that silo (key: the silo's address), in front of the silo's
/// <see cref="MemberHost"/>; reentrant, so members run concurrently within their limits.</summary>
[SiloPinned]
[Reentrant]
internal sealed class MemberHostGrain(LocalMembers members, LocalTunnels tunnels, ScribeDissemination trees, ILogger<MemberHostGrain> logger) : Grain, IMemberHostGrain
{
    private MemberHost? _host;

    private MemberHost Host => _host ??= new MemberHost(members, tunnels, GrainFactory, logger);

    public Task<MemberAnswer> Request(Guid id, string cluster, byte[] request, TimeSpan remaining) => Host.Request(id, cluster, request, remaining);

    public Task Deliver(Audience audience, Disseminated[] messages, MemberEndpoint[] forward) => Host.Deliver(audience, messages, forward);

    public Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining) =>
        Host.OpenTunnel(cluster, id, opener, openerWindow, remaining);

    public Task<TunnelStatus> TunnelData(string from, Guid id, TunnelFrame[] frames) => Host.TunnelData(from, id, frames);

    public Task<TunnelStatus> TunnelCredit(string from, Guid id, long grantedTotal) => Host.TunnelCredit(from, id, grantedTotal);

    public Task TunnelFailed(string from, Guid id, TunnelCloseReason reason, string? detail) => Host.TunnelFailed(from, id, reason, detail);

    public Task<TunnelStatus[]> TunnelPing(string from, Guid[] ids) => Host.TunnelPing(from, ids);

    public Task<string[]> SendDown(Audience audience, string rendezvousKey, Disseminated[] messages) =>
        trees.SendDownAsync(audience, rendezvousKey, messages);
}
