using Iris.Members;
using Iris.Protocol;
using Iris.Tunnels;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Iris.Grains.Members;

/// <summary>
/// The silo's member host as a grain service, for Orleans clients' requests in one hop (see
/// <see cref="IMemberHostService"/>): the same members and request ledger as <see cref="MemberHostGrain"/>, so a request
/// repeated through the grain after its call here lost its answer joins the same run. Each request leaves the service's
/// turn at once (see <see cref="Request"/>); tunnel frames and credit, which only queue, are taken on it.
/// </summary>
internal sealed class MemberHostService : GrainService, IMemberHostService
{
    private readonly MemberHost _host;
    private readonly SiloAddress _silo;
    private long _requests;
    private long _tunnelCalls;

    public MemberHostService(
        GrainId id, Silo silo, ILoggerFactory loggers, LocalMembers members, LocalTunnels tunnels, IGrainFactory grains, ILocalSiloDetails local)
        : base(id, silo, loggers)
    {
        _host = new MemberHost(members, tunnels, grains, loggers.CreateLogger<MemberHostService>());
        _silo = local.SiloAddress;
    }

    /// <summary>Requests that came here for this silo's members.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Tunnel data and credit calls that came here.</summary>
    public long TunnelCalls => Interlocked.Read(ref _tunnelCalls);

    public Task<MemberAnswer> Request(SiloAddress host, Guid id, string cluster, byte[] request, TimeSpan remaining)
    {
        if (!host.Equals(_silo))
        {
            return Task.FromException<MemberAnswer>(new MemberRefusedException(MemberReplyStatus.NotHere, $"silo {host} is no longer at this endpoint ({_silo} is)"));
        }

        Interlocked.Increment(ref _requests);

        // Off the service's turn at once, so the ledger holds the id as soon as the call arrives: a system target runs
        // its calls one turn at a time, and a handler's synchronous work would otherwise hold up the calls behind it,
        // which Orleans never drops for their age (system-target calls have no time to live). A copy repeated by its
        // caller then joins the run instead of finding it forgotten.
        return Task.Run(() => _host.Request(id, cluster, request, remaining));
    }

    /// <summary>Taken on the service's turn: the frames are queued for the tunnel's reader, nothing waits.</summary>
    public Task<TunnelStatus> TunnelData(SiloAddress host, string from, Guid id, TunnelFrame[] frames)
    {
        Interlocked.Increment(ref _tunnelCalls);
        return host.Equals(_silo) ? _host.TunnelData(from, id, frames) : Task.FromResult(TunnelStatus.Unknown);
    }

    public Task<TunnelStatus> TunnelCredit(SiloAddress host, string from, Guid id, long grantedTotal)
    {
        Interlocked.Increment(ref _tunnelCalls);
        return host.Equals(_silo) ? _host.TunnelCredit(from, id, grantedTotal) : Task.FromResult(TunnelStatus.Unknown);
    }
}
