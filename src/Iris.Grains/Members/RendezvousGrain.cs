namespace Iris.Members;

/// <summary>A silo hosting members of a cluster (or subscribers of a topic), with the capacity it offers.</summary>
[GenerateSerializer]
[Immutable]
internal sealed record MemberSilo([property: Id(0)] SiloAddress Silo, [property: Id(1)] double Capacity);

/// <summary>Where a cluster's (or topic's) member silos are known: key <c>cluster/name</c> or <c>topic/name</c>.</summary>
internal interface IRendezvousGrain : IGrainWithStringKey
{
    /// <summary>Adds or refreshes a member silo. Silos refresh regularly; one that stops is forgotten.</summary>
    Task Register(SiloAddress silo, double capacity);

    Task Unregister(SiloAddress silo);

    Task<MemberSilo[]> GetMembers();
}

/// <summary>
/// Keeps a name's member silos, each on a lease that the silo renews; silos that died are dropped at once (Orleans
/// membership says so) and silos that stopped renewing after the lease.
/// </summary>
internal sealed class RendezvousGrain(IClusterMembershipService membership, TimeProvider time) : Grain, IRendezvousGrain
{
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    private readonly Dictionary<SiloAddress, (double Capacity, DateTimeOffset Expires)> _members = [];

    public Task Register(SiloAddress silo, double capacity)
    {
        _members[silo] = (capacity, time.GetUtcNow() + Lease);
        return Task.CompletedTask;
    }

    public Task Unregister(SiloAddress silo)
    {
        _members.Remove(silo);
        return Task.CompletedTask;
    }

    public Task<MemberSilo[]> GetMembers()
    {
        var now = time.GetUtcNow();
        var snapshot = membership.CurrentSnapshot;
        foreach (var silo in _members.Keys.ToList())
        {
            if (_members[silo].Expires < now || snapshot.GetSiloStatus(silo) is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping)
            {
                _members.Remove(silo);
            }
        }

        return Task.FromResult(_members.Select(m => new MemberSilo(m.Key, m.Value.Capacity)).ToArray());
    }
}
