using Iris.Diagnostics;
using Iris.Dissemination;
using Iris.Protocol;
using Iris.Tunnels;
using Microsoft.Extensions.Logging;

namespace Iris.Members;

/// <summary>
/// The member host of a process, whichever kind it is: in an Orleans client it is the observer object itself (Orleans
/// holds observers weakly: the client keeps a strong reference); in a silo the member host grain forwards to it.
/// Clients are leaves of a dissemination tree: they are never handed a share to pass on.
/// </summary>
internal sealed class MemberHost(LocalMembers members, LocalTunnels tunnels, IGrainFactory grains, ILogger logger) : IMemberObserver
{
    public Task<MemberAnswer> Request(Guid id, string cluster, byte[] request, TimeSpan remaining) =>
        OnWire(cluster, members.RequestAsync(id, cluster, request, remaining), members);

    /// <summary>The wire form of a reply: its bytes with the capacity offered here now, or the exception that says why
    /// there are none.</summary>
    private static Task<MemberAnswer> OnWire(string cluster, Task<MemberReply> reply, LocalMembers members) =>
        reply.IsCompletedSuccessfully ? Unwrap(cluster, reply.Result, members) : UnwrapAsync(cluster, reply, members);

    private static async Task<MemberAnswer> UnwrapAsync(string cluster, Task<MemberReply> reply, LocalMembers members) =>
        await Unwrap(cluster, await reply.ConfigureAwait(false), members).ConfigureAwait(false);

    private static Task<MemberAnswer> Unwrap(string cluster, MemberReply reply, LocalMembers members) => reply.Status switch
    {
        MemberReplyStatus.Replied => Task.FromResult(new MemberAnswer(reply.Data ?? [], members.Capacity(cluster))),
        MemberReplyStatus.Failed => Task.FromException<MemberAnswer>(new RemoteException(cluster, reply.Error ?? "(no message)")),
        _ => Task.FromException<MemberAnswer>(new MemberRefusedException(reply.Status, reply.Error) { RetryAfter = reply.RetryAfter }),
    };

    public Task Deliver(Audience audience, Disseminated[] messages, MemberEndpoint[] forward)
    {
        members.Deliver(audience, messages);
        return Disseminator.SendAsync(
            forward,
            (next, share) => next.Call(grains, host => host.Deliver(audience, messages, share)),
            (member, error) => Log.NotDelivered(logger, messages[0].Id, messages.Length, audience.ToString(), member.Id, error.Message));
    }

    public Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining) =>
        members.Pick(cluster) is { } member
            ? tunnels.AcceptAsync(cluster, id, opener, openerWindow, remaining, member.Handler, member.Tunnels)
            : Task.FromException<TunnelAccepted>(new MemberRefusedException(MemberReplyStatus.NotHere, null));

    public Task<TunnelStatus> TunnelData(string from, Guid id, TunnelFrame[] frames) => Task.FromResult(tunnels.OnData(from, id, frames));

    public Task<TunnelStatus> TunnelCredit(string from, Guid id, long grantedTotal) => Task.FromResult(tunnels.OnCredit(from, id, grantedTotal));

    public Task TunnelFailed(string from, Guid id, TunnelCloseReason reason, string? detail)
    {
        tunnels.OnPeerFailed(from, id, reason, detail);
        return Task.CompletedTask;
    }

    public Task<TunnelStatus[]> TunnelPing(string from, Guid[] ids) => Task.FromResult(tunnels.Statuses(from, ids));
}
