using System.Collections.Concurrent;
using Iris.Calls;
using Iris.Protocol;
using Orleans.Messaging;
using Orleans.Serialization.TypeSystem;

namespace Iris.Requests;

/// <summary>
/// The one-hop route of an Orleans client's requests to a silo's members: the silo's <see cref="IMemberHostService"/>,
/// addressed by the silo's gateway address, when that gateway is one this client knows (Orleans then sends the call on
/// its connection to that gateway, and the gateway runs it). Any other call for a silo's member host goes to the
/// <see cref="IMemberHostGrain"/>, through whichever gateway Orleans picks, which forwards it: two hops unless it picked
/// the member's silo. Only gateways that Orleans' own gateway list holds are used: a call for a gateway address that
/// Orleans does not hold goes to another gateway, which cannot forward it, and it is lost. That list is Orleans'
/// internal; it is refreshed from the same <see cref="IGatewayListProvider"/> every <paramref name="refreshPeriod"/>, so a
/// gateway is used once the provider has listed it for longer than that. A gateway whose call was refused on the way
/// or cut off is passed over for <see cref="PassOverFor"/>, and the call is repeated through the grain with the same
/// request id, so nothing runs twice (see <see cref="RequestAsync"/>).
/// </summary>
internal sealed class DirectRoutes(IGrainFactory grains, IGatewayListProvider gateways, TimeSpan refreshPeriod, TimeProvider time)
{
    /// <summary>The grain type code of the member host service, as Orleans derives it from the service's interface
    /// (<c>GrainInterfaceUtils.GetGrainClassTypeCode</c>, not public): the stable hash of the interface's type name.</summary>
    internal static readonly int TypeCode = (int)StableHash.ComputeHash(RuntimeTypeNameFormatter.Format(typeof(IMemberHostService)));

    /// <summary>How old the list of this client's gateways may grow before it is read again.</summary>
    public static readonly TimeSpan ListAge = TimeSpan.FromSeconds(5);

    /// <summary>How long a gateway whose direct call was refused on the way or cut off is passed over.</summary>
    public static readonly TimeSpan PassOverFor = TimeSpan.FromSeconds(30);

    /// <summary>Beyond Orleans' refresh period: its refresh may take a moment.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<SiloAddress, IMemberHostService> _services = new();
    private readonly ConcurrentDictionary<SiloAddress, long> _passedOver = new();

    /// <summary>The gateways the provider lists, each with when it was first listed.</summary>
    private volatile Dictionary<SiloAddress, long> _listed = [];
    private long _listedAt;
    private int _reading;
    private bool _read;

    /// <summary>The member host service of <paramref name="member"/>'s silo when it is reached in one hop from here; null
    /// when the call should go to the member host grain.</summary>
    public IMemberHostService? To(MemberEndpoint member)
    {
        if (member.Gateway is not { } gateway || member.Silo is null)
        {
            return null;
        }

        ReadListIfDue();
        if (!_listed.TryGetValue(gateway, out var listedSince) || time.GetElapsedTime(listedSince) <= refreshPeriod + Margin)
        {
            return null;
        }

        if (!_passedOver.IsEmpty && _passedOver.TryGetValue(gateway, out var since))
        {
            if (time.GetElapsedTime(since) < PassOverFor)
            {
                return null;
            }

            _passedOver.TryRemove(new KeyValuePair<SiloAddress, long>(gateway, since));
        }

        return _services.GetOrAdd(gateway, static (address, factory) => factory.GetGrain<IMemberHostService>(
            SystemTargetGrainId.CreateGrainServiceGrainId(TypeCode, null!, address)), grains);
    }

    /// <summary>Calls <paramref name="member"/>'s silo in one hop: the call itself, with no wait of its own. A copy that
    /// fails refused on the way or cut off with its connection is to be reported to <see cref="Failed"/> by whoever
    /// awaits it.</summary>
    public static Task<MemberAnswer> RequestAsync(IMemberHostService service, MemberEndpoint member, Guid id, string cluster, byte[] request, TimeSpan remaining) =>
        service.Request(member.Silo!, id, cluster, request, remaining);

    /// <summary>A call to <paramref name="member"/> failed with <paramref name="error"/>. One refused on the way or cut
    /// off with its connection passes the member's gateway over, so the caller's repeat goes through the grain: such a
    /// copy either reached the silo before its connection failed (and its run is in the silo's ledger, which the
    /// repeat joins) or never will. A call that is only unanswered does not: its handler may just be slow, or its copy
    /// held up on the way, and a repeat by the same route comes after it on the same connection, where it joins the run
    /// instead of running it a second time after the ledger forgot it (calls for a system target have no time to live
    /// in Orleans, so a held-up copy is never dropped). Only a copy that went in one hop is reported: a call through
    /// the grain fails with any gateway of this client, not only the member's.</summary>
    public void Failed(MemberEndpoint member, Exception error)
    {
        if (member.Gateway is { } gateway && CallPolicy.Classify(error) is not (CallFailure.Answered or CallFailure.NoAnswer))
        {
            _passedOver[gateway] = time.GetTimestamp();
        }
    }

    private void ReadListIfDue()
    {
        if ((Volatile.Read(ref _read) && time.GetElapsedTime(Interlocked.Read(ref _listedAt)) < ListAge) || Interlocked.Exchange(ref _reading, 1) == 1)
        {
            return;
        }

        _ = ReadListAsync();
    }

    private async Task ReadListAsync()
    {
        try
        {
            var listed = await gateways.GetGateways().ConfigureAwait(false);
            var known = _listed;
            var now = time.GetTimestamp();
            _listed = listed.Select(uri => uri.ToGatewayAddress()).OfType<SiloAddress>().Distinct()
                .ToDictionary(gateway => gateway, gateway => known.TryGetValue(gateway, out var since) ? since : now);
        }
        catch (Exception)
        {
            // Keep the list as it was; the next request reads it again.
        }
        finally
        {
            Interlocked.Exchange(ref _listedAt, time.GetTimestamp());
            Volatile.Write(ref _read, true);
            Volatile.Write(ref _reading, 0);
        }
    }
}
