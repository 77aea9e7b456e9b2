using Orleans.Concurrency;
using Orleans.Services;

namespace Iris.Protocol;

/// <summary>
/// A silo's member host as an Orleans grain service: one per silo, addressed by the silo's gateway address, which lets
/// an Orleans client send a request straight to the member's silo over its connection to that gateway (one hop).
/// Orleans sends a call for an ordinary grain, such as <see cref="IMemberHostGrain"/>, through whichever gateway the
/// client's bucket for that grain id holds, which forwards it unless it is the grain's silo; a call for a system target
/// addressed by a gateway the client is connected to goes on that connection, and the gateway runs it itself.
/// </summary>
internal interface IMemberHostService : IGrainService
{
    /// <summary>As <see cref="IMemberHost.Request"/>, run only on silo <paramref name="host"/>: a gateway address names an
    /// endpoint, not one incarnation of its silo, so a silo restarted on the same endpoint refuses the call
    /// (<see cref="MemberReplyStatus.NotHere"/>) instead of running a request meant for the silo before it.</summary>
    [AlwaysInterleave]
    [ResponseTimeout(Calls.CallPolicy.ReaskAfterText)]
    Task<MemberAnswer> Request(SiloAddress host, Guid id, string cluster, byte[] request, TimeSpan remaining);

    /// <summary>As <see cref="IMemberHost.TunnelData"/>, for silo <paramref name="host"/>: a silo restarted on the same
    /// endpoint has no tunnel of the one before it (<see cref="TunnelStatus.Unknown"/>).</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelData(SiloAddress host, string from, Guid id, TunnelFrame[] frames);

    /// <summary>As <see cref="IMemberHost.TunnelCredit"/>, for silo <paramref name="host"/>, as
    /// <see cref="TunnelData"/>.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelCredit(SiloAddress host, string from, Guid id, long grantedTotal);
}
