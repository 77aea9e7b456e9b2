namespace Iris.Members;

/// <summary>
/// Where members of a cluster (or subscribers of a topic) are reached, with the capacity offered there: a silo's
/// member host, or an Orleans client's member observer.
/// </summary>
[GenerateSerializer]
[Immutable]
internal sealed record MemberSilo([property: Id(0)] SiloAddress? Silo, [property: Id(1)] double Capacity)
{
    /// <summary>The client's observer, for members hosted by an Orleans client.</summary>
    [Id(2)]
    public IMemberObserver? Observer { get; init; }

    /// <summary>Identifies the entry: the silo address, or the client's registration id.</summary>
    [Id(3)]
    public string Id { get; init; } = Silo?.ToParsableString() ?? string.Empty;

    /// <summary>Where requests, broadcasts and publications for these members go.</summary>
    public IMemberHost Host(IGrainFactory grains) =>
        Observer as IMemberHost ?? grains.GetGrain<IMemberHostGrain>(Silo!.ToParsableString());
}

/// <summary>Where a cluster's (or topic's) member silos are known: key <c>cluster/name</c> or <c>topic/name</c>.</summary>
internal interface IRendezvousGrain : IGrainWithStringKey
{
    /// <summary>Adds or refreshes a member entry. Entries are refreshed regularly; one that stops is forgotten.</summary>
    Task Register(MemberSilo member);

    Task Unregister(string id);

    Task<MemberSilo[]> GetMembers();
}

/// <summary>
/// Keeps a name's member silos, each on a lease that the silo renews; silos that died are dropped at once (Orleans
/// membership says so) and silos that stopped renewing after the lease.
/// </summary>
internal sealed class RendezvousGrain(IClusterMembershipService membership, TimeProvider time) : Grain, IRendezvousGrain
{
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>Lease of a client's entry: clients renew every few seconds, so a dead one goes quickly, long before
    /// Orleans would drop the client.</summary>
    public static readonly TimeSpan ClientLease = TimeSpan.FromSeconds(15);

    private readonly Dictionary<string, (MemberSilo Member, DateTimeOffset Expires)> _members = new(StringComparer.Ordinal);

    public Task Register(MemberSilo member)
    {
        _members[member.Id] = (member, time.GetUtcNow() + (member.Observer is null ? Lease : ClientLease));
        return Task.CompletedTask;
    }

    public Task Unregister(string id)
    {
        _members.Remove(id);
        return Task.CompletedTask;
    }

    public Task<MemberSilo[]> GetMembers()
    {
        var now = time.GetUtcNow();
        var snapshot = membership.CurrentSnapshot;
        foreach (var (id, (member, expires)) in _members.ToList())
        {
            if (expires < now || (member.Silo is { } silo && snapshot.GetSiloStatus(silo) is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping))
            {
                _members.Remove(id);
            }
        }

        return Task.FromResult(_members.Values.Select(m => m.Member).ToArray());
    }
}
