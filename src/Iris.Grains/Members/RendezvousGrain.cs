using Iris.Hosting;
using Iris.Overlay;
using Iris.Patterns;
using Iris.Placement;
using Orleans.Concurrency;
using Orleans.Serialization;

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

    /// <summary>
    /// Calls the member host of this process: the silo's member host grain, or the client's observer. An observer is
    /// called from outside any grain, as the silo's hosted client: Orleans sends a client's reply through whichever
    /// gateway the client picks, and a gateway finds a reply's target again by placement, which for a stateless worker
    /// (the cluster and topic grains) means its own silo, not the caller's; the reply would be lost. The hosted client
    /// is found through the client directory from any gateway.
    /// </summary>
    public Task<T> Call<T>(IGrainFactory grains, Func<IMemberHost, Task<T>> call) =>
        Observer is { } observer ? Task.Run(() => call(observer)) : call(HostGrain(grains));

    /// <inheritdoc cref="Call{T}"/>
    public Task Call(IGrainFactory grains, Func<IMemberHost, Task> call) =>
        Observer is { } observer ? Task.Run(() => call(observer)) : call(HostGrain(grains));

    public Task<byte[]> Request(IGrainFactory grains, string cluster, byte[] request, DateTime deadlineUtc) =>
        Call(grains, host => host.Request(cluster, request, deadlineUtc));

    private IMemberHostGrain HostGrain(IGrainFactory grains) => grains.GetGrain<IMemberHostGrain>(Silo!.ToParsableString());
}

/// <summary>Where a cluster's (or topic's) member silos are known: key <c>cluster/name</c> or <c>topic/name</c>.</summary>
internal interface IRendezvousGrain : IGrainWithStringKey
{
    /// <summary>Adds or refreshes a member entry. Entries are refreshed regularly; one that stops is forgotten.</summary>
    Task Register(MemberSilo member);

    Task Unregister(string id);

    Task<MemberSilo[]> GetMembers();

    /// <summary>Sends a broadcast to the cluster's members (or, with <paramref name="topic"/>, a publication to the
    /// topic's subscribers) down the name's Scribe tree from here, then directly to members the tree did not reach.</summary>
    Task Disseminate(bool topic, string name, byte[] message, Guid id);

    /// <summary>Diagnostics: the silo this activation runs on.</summary>
    Task<SiloAddress> GetSilo();
}

/// <summary>
/// Keeps a name's member silos, each on a lease that the silo renews; silos that died are dropped at once (Orleans
/// membership says so) and silos that stopped renewing after the lease. Reentrant: a broadcast going down the tree, or
/// a write of the list to the ring, never holds up lookups and renewals.
/// </summary>
[RendezvousPlacement]
[Reentrant]
internal sealed class RendezvousGrain(
    IClusterMembershipService membership, TimeProvider time, IrisOverlay overlay, Serializer<MemberSilo[]> serializer, ILocalSiloDetails silo,
    ScribeDissemination trees)
    : Grain, IRendezvousGrain
{
    /// <summary>How often the grain checks it still sits on its name's ring root.</summary>
    public static readonly TimeSpan RootCheck = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _saving = new(1, 1);
    private long _savedVersion;

    private NodeKey RecordKey => NodeKey.FromName("iris/rendezvous-members/" + this.GetPrimaryKeyString());

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // The member list survives the grain moving to another silo: it is kept in a record on the ring.
        var records = await overlay.GetRecordsAsync(cancellationToken);
        if (await records.ReadAsync(RecordKey, cancellationToken) is { } saved)
        {
            _savedVersion = saved.Version;
            var now = time.GetUtcNow();
            foreach (var member in serializer.Deserialize(saved.Data) ?? [])
            {
                _members[member.Id] = (member, now + (member.Observer is null ? Lease : ClientLease));
            }
        }

        this.RegisterGrainTimer(CheckRootAsync, new GrainTimerCreationOptions(RootCheck, RootCheck) { Interleave = true });
    }

    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>Lease of a client's entry: clients renew every few seconds, so a dead one goes quickly, long before
    /// Orleans would drop the client.</summary>
    public static readonly TimeSpan ClientLease = TimeSpan.FromSeconds(15);

    private readonly Dictionary<string, (MemberSilo Member, DateTimeOffset Expires)> _members = new(StringComparer.Ordinal);

    public Task Register(MemberSilo member)
    {
        var changed = !_members.TryGetValue(member.Id, out var known) || known.Member.Capacity != member.Capacity;
        _members[member.Id] = (member, time.GetUtcNow() + (member.Observer is null ? Lease : ClientLease));
        return changed ? SaveAsync() : Task.CompletedTask;
    }

    public Task<SiloAddress> GetSilo() => Task.FromResult(silo.SiloAddress);

    public Task Unregister(string id) => _members.Remove(id) ? SaveAsync() : Task.CompletedTask;

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

    public async Task Disseminate(bool topic, string name, byte[] message, Guid id)
    {
        var known = await GetMembers();
        var reached = (await trees.SendDownAsync(topic, name, this.GetPrimaryKeyString(), message, id)).ToHashSet(StringComparer.Ordinal);
        var direct = known.Where(m => !reached.Contains(m.Id)).ToArray();
        trees.CountDirect(direct.Count(m => m.Observer is null));
        await Dissemination.SendAsync(direct, (member, share) => member.Call(
            GrainFactory, host => topic ? host.Publish(name, message, id, share) : host.Broadcast(name, message, id, share)));
    }

    /// <summary>Writes the member list to the ring (renewals of known entries are not written).</summary>
    private async Task SaveAsync()
    {
        // One write at a time, each of the list as it is when the write starts, so the last write holds the latest list.
        await _saving.WaitAsync();
        try
        {
            var records = await overlay.GetRecordsAsync(CancellationToken.None);
            var data = serializer.SerializeToArray(_members.Values.Select(m => m.Member).ToArray());
            var result = await records.CompareAndSwapAsync(RecordKey, _savedVersion, data);
            if (!result.Success && result.Current is not null)
            {
                // An older activation wrote meanwhile: this one is the live one, write over it.
                result = await records.CompareAndSwapAsync(RecordKey, result.Current.Version, data);
            }

            if (result.Current is not null)
            {
                _savedVersion = result.Current.Version;
            }
        }
        finally
        {
            _saving.Release();
        }
    }

    /// <summary>When the ring has moved the name's root to another node, this activation steps aside; the next call
    /// places the grain on the new root's silo, where it reads the member list back from the ring.</summary>
    private Task CheckRootAsync(CancellationToken cancellationToken)
    {
        if (overlay.Host?.Node is { IsReady: true } node && !node.IsRootFor(RendezvousPlacement.KeyOf(this.GetPrimaryKeyString())))
        {
            this.DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }
}
