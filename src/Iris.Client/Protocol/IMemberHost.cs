using Orleans.Concurrency;

namespace Iris.Protocol;

/// <summary>
/// The door to the members of one process: requests, broadcasts, publications and tunnels for them arrive here. All
/// calls interleave, so members run requests concurrently (within their <see cref="MemberLimits"/>) instead of one by
/// one, and tunnel traffic never waits behind a request. Time travels as time remaining, never as a clock reading: each
/// process measures it against its own monotonic clock.
/// </summary>
internal interface IMemberHost : IAddressable
{
    /// <summary>Runs request <paramref name="id"/> on a member of <paramref name="cluster"/> here, at most once: a repeat of
    /// an id joins the run in flight or gets its reply. Answers the reply's bytes with the capacity offered here; a request that did not start here
    /// throws <see cref="MemberRefusedException"/>, a handler that threw <see cref="RemoteException"/>. A call unanswered
    /// after <see cref="Calls.CallPolicy.ReaskAfter"/> is made again by its caller, which joins the run here.</summary>
    [AlwaysInterleave]
    [ResponseTimeout(Calls.CallPolicy.ReaskAfterText)]
    Task<MemberAnswer> Request(Guid id, string cluster, byte[] request, TimeSpan remaining);

    /// <summary>Hands broadcasts or publications to this process's members of <paramref name="audience"/> (their
    /// handlers run after the call returns, each member's in the order given) and passes them on to
    /// <paramref name="forward"/>; a repeated id is not delivered again.</summary>
    [AlwaysInterleave]
    Task Deliver(Audience audience, Disseminated[] messages, MemberEndpoint[] forward);

    /// <summary>Offers tunnel <paramref name="id"/> to a member of <paramref name="cluster"/> here; its handler accepts or
    /// refuses; with no member of the cluster here, throws <see cref="MemberRefusedException"/>. A repeated offer of the
    /// same id gets the first one's answer: a tunnel has one member end. Unanswered
    /// after <see cref="Calls.CallPolicy.ReaskAfter"/>, the offer is made again.</summary>
    [AlwaysInterleave]
    [ResponseTimeout(Calls.CallPolicy.ReaskAfterText)]
    Task<TunnelAccepted> OpenTunnel(string cluster, Guid id, MemberEndpoint opener, int openerWindow, TimeSpan remaining);

    /// <summary>Frames from process <paramref name="from"/> for the end of tunnel <paramref name="id"/> here. A call
    /// unanswered after 8 s is made again (see the tunnel sender), well before Orleans' default 30 s.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelData(string from, Guid id, TunnelFrame[] frames);

    /// <summary>The other end's application has consumed <paramref name="grantedTotal"/> bytes since the tunnel opened:
    /// the end here may be that much past its first window.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:00:08")]
    Task<TunnelStatus> TunnelCredit(string from, Guid id, long grantedTotal);

    /// <summary>The other end failed (not a graceful close): the end here closes with the reason.</summary>
    [AlwaysInterleave]
    Task TunnelFailed(string from, Guid id, TunnelCloseReason reason, string? detail);

    /// <summary>Keep-alive of process <paramref name="from"/>, which has tunnels to this one: the status here of each.</summary>
    [AlwaysInterleave]
    Task<TunnelStatus[]> TunnelPing(string from, Guid[] ids);
}

/// <summary>A silo's member host: a grain pinned to the silo.</summary>
internal interface IMemberHostGrain : IMemberHost, IGrainWithStringKey
{
    /// <summary>Broadcasts or publications coming down the Scribe tree of <paramref name="rendezvousKey"/> together;
    /// returns the member silos reached here and below.</summary>
    [AlwaysInterleave]
    Task<string[]> SendDown(Audience audience, string rendezvousKey, Disseminated[] messages);
}

/// <summary>An Orleans client's member host: an observer the client creates.</summary>
internal interface IMemberObserver : IMemberHost, IGrainObserver;

/// <summary>Bounds of the calls between processes.</summary>
internal static class CallLimits
{
    /// <summary>The longest timeout a request or a tunnel open may have (ten minutes): a caller that waits longer has
    /// lost track of why it asked.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(10);
}
