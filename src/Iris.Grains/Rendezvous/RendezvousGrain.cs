using Iris.Calls;
using Iris.Grains.Diagnostics;
using Iris.Dissemination;
using Iris.Grains.Dissemination;
using Iris.Overlay;
using Iris.Overlay.Records;
using Iris.Placement;
using Iris.Protocol;
using Iris.Ring;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Serialization;
using ClientLog = Iris.Diagnostics.Log;

namespace Iris.Grains.Rendezvous;

/// <summary>
/// Keeps one split of a name's member processes, each on a lease that the process renews; silos that died are dropped
/// at once (Orleans membership says so) and processes that stopped renewing after the lease. Reentrant: a broadcast
/// going down the tree, or a write of the list to the ring, never holds up lookups and renewals.
/// </summary>
[RendezvousPlacement]
[Reentrant]
internal sealed class RendezvousGrain(
    IClusterMembershipService membership, TimeProvider time, IrisOverlay overlay, Serializer<MemberEndpoint[]> serializer, ILocalSiloDetails silo,
    ScribeDissemination trees, IGrainFactory grains, LocalRendezvous active, ILogger<RendezvousGrain> logger)
    : Grain, IRendezvousGrain
{
    /// <summary>How often the grain checks it still sits on its name's ring root.</summary>
    public static readonly TimeSpan RootCheck = TimeSpan.FromSeconds(5);

    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>Lease of a client's entry: clients renew every few seconds, so a dead one goes quickly, long before
    /// Orleans would drop the client.</summary>
    public static readonly TimeSpan ClientLease = TimeSpan.FromSeconds(15);

    /// <summary>How long a message waits for its tree to say which member silos it reached before every member known
    /// here is sent it directly: a healthy tree answers in milliseconds, and a hop that hangs must not keep the members
    /// below it waiting for Orleans' 30-s response timeout.</summary>
    public static readonly TimeSpan TreeWait = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long after activating this activation may not know every member registered: while Orleans' grain directory
    /// and the ring settle, another activation of the key can take registrations and save them after this one read
    /// the list. Until a lease has passed (every live member has renewed by then), each batch handed down also goes to
    /// the members saved since by someone else: one record read at a time, shared by the batches accepted meanwhile,
    /// for this time only.
    /// </summary>
    public static readonly TimeSpan Youth = Lease;

    /// <summary>
    /// The least time between the starts of two reads of the saved list by a young activation. Each read is a quorum
    /// read on the ring; under a stream of broadcasts, reads ran back to back for the whole <see cref="Youth"/> (a few percent
    /// of the rendezvous silo's samples, and more on the acceptors). A member saved by another activation gets a message up to this much later; the
    /// members known here are not held up.
    /// </summary>
    public static readonly TimeSpan ReadSpacing = TimeSpan.FromMilliseconds(100);

    private readonly Dictionary<string, (MemberEndpoint Member, long Renewed)> _members = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _saving = new(1, 1);
    private readonly RecentIds _accepted = new(time);
    private long _savedVersion;
    private long _activated;

    // The young activation's reads of its saved list: at most one in flight and one waiting, shared by every batch
    // accepted meanwhile (each batch needs a read that starts after it was accepted, and the waiting one does).
    private readonly Lock _reading = new();
    private Task<RecordValue?>? _readInFlight;
    private Task<RecordValue?>? _readWaiting;
    private long _readStarted;

    // Both hashed once per activation: the root check runs every 5 s on every rendezvous a silo holds.
    private NodeKey? _recordKey;
    private NodeKey? _ringKey;

    private NodeKey RecordKey => _recordKey ??= RecordKeyOf(this.GetPrimaryKeyString());

    private NodeKey RingKey => _ringKey ??= RendezvousPlacement.KeyOf(this.GetPrimaryKeyString());

    /// <summary>The key of the ring record that keeps the member list of rendezvous <paramref name="grainKey"/>.</summary>
    public static NodeKey RecordKeyOf(string grainKey) => NodeKey.FromName("iris/rendezvous-members/" + grainKey);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // The member list survives the grain moving to another silo: it is kept in a record on the ring.
        var records = await overlay.GetRecordsAsync(cancellationToken);
        if (await records.ReadAsync(RecordKey, cancellationToken) is { } saved)
        {
            _savedVersion = saved.Version;
            Adopt(saved);
        }

        _activated = time.GetTimestamp();
        active.Activated(this.GetPrimaryKeyString());

        this.RegisterGrainTimer(CheckRootAsync, new GrainTimerCreationOptions(RootCheck, RootCheck) { Interleave = true });
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        active.Deactivated(this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public Task Register(MemberEndpoint member)
    {
        var changed = !_members.TryGetValue(member.Id, out var known) || known.Member.Capacity != member.Capacity || known.Member.Idempotent != member.Idempotent;
        _members[member.Id] = (member, time.GetTimestamp());
        return changed ? SaveAsync() : Task.CompletedTask;
    }

    public Task<SiloAddress> GetSilo() => Task.FromResult(silo.SiloAddress);

    public Task Unregister(string id) => _members.Remove(id) ? SaveAsync() : Task.CompletedTask;

    public Task<MemberEndpoint[]> GetMembers() => Task.FromResult(Live());

    public Task Disseminate(Audience audience, Disseminated[] messages)
    {
        var fresh = _accepted.Fresh(messages);
        if (fresh.Length > 0)
        {
            // Read now, so a member registered before the call is served; sent after the call returns. Sent from the
            // thread pool with the silo's grain factory, not from this activation: a rendezvous that steps aside (the
            // ring moved its root) or is collected must not take the messages it accepted with it. From the
            // activation, every call made after it deactivated failed ("invalid activation") and the message was
            // lost for the members not reached yet.
            var known = Live();
            var key = this.GetPrimaryKeyString();
            long? readVersion = time.GetElapsedTime(_activated) < Youth ? _savedVersion : null;
            _ = Task.Run(() => DisseminateAsync(audience, key, fresh, known, readVersion));
        }

        return Task.CompletedTask;
    }

    // readVersion: while this activation is young (Youth), the record version whose list it holds; the members of a
    // later version are reached too.
    private async Task DisseminateAsync(Audience audience, string key, Disseminated[] messages, MemberEndpoint[] known, long? readVersion)
    {
        var reached = new HashSet<string>(StringComparer.Ordinal);
        var savedSince = readVersion is { } version ? SavedSinceAsync(key, version) : null;
        var tree = trees.SendDownAsync(audience, key, messages);
        try
        {
            reached.UnionWith(await tree.WaitAsync(TreeWait, time));
        }
        catch (TimeoutException)
        {
            // A hop below hangs (its silo paused, its link stopped moving; Orleans gives up on it after 30 s): which
            // members the tree reached is not known yet, so every member known here is reached directly now. Copies
            // that the tree delivers later are dropped: member processes deliver an id once.
            _ = tree.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            SiloLog.TreeSlow(logger, audience.ToString(), messages[0].Id, TreeWait);
        }
        catch (Exception e)
        {
            // This silo's own hop failed (its overlay node is not in a ring yet, or leaving): every member known here is
            // reached directly instead.
            SiloLog.DisseminationFailed(logger, audience.ToString(), messages[0].Id, e);
        }

        var direct = known.Where(m => !reached.Contains(m.Id)).ToArray();
        trees.CountDirect(direct.Count(m => m.Observer is null) * messages.Length);
        var toKnown = SendDirectAsync(audience, messages, direct);
        if (savedSince is not null)
        {
            // The members saved by another activation are reached once the list is read, without holding up the
            // members known here: the read may take a while while the ring settles (the record's root moving too).
            var sent = known.Select(m => m.Id).Concat(reached).ToHashSet(StringComparer.Ordinal);
            var more = (await savedSince).Where(m => sent.Add(m.Id)).ToArray();
            trees.CountDirect(more.Count(m => m.Observer is null) * messages.Length);
            await SendDirectAsync(audience, messages, more);
        }

        await toKnown;
    }

    /// <summary>Hands <paramref name="messages"/> to each of <paramref name="members"/>' processes. Never fails: a member
    /// process given up on (its silo is gone, or it stayed unreachable for the hop's persistence) is logged.</summary>
    private Task SendDirectAsync(Audience audience, Disseminated[] messages, MemberEndpoint[] members) =>
        Disseminator.SendAsync(
            members,
            (member, share) => member.Call(grains, host => host.Deliver(audience, messages, share)),
            (member, error) => ClientLog.NotDelivered(logger, messages[0].Id, messages.Length, audience.ToString(), member.Id, error.Message));

    /// <summary>
    /// The members in the ring record of rendezvous <paramref name="key"/> when it was written after
    /// <paramref name="version"/> (by another activation of the key, or an older one stepping aside), read after this
    /// call; none when it was not, or could not be read (within the record store's operation time; a member reached
    /// that late still gets the message once). Members this activation dropped since may come back with it: they drop
    /// a message id they have seen, and a process that is gone is given up on after the hand-down's persistence.
    /// </summary>
    private async Task<MemberEndpoint[]> SavedSinceAsync(string key, long version) =>
        await ReadAfterNow(key) is { } saved && saved.Version != version ? serializer.Deserialize(saved.Data) ?? [] : [];

    /// <summary>A read of the saved list that starts after this call: the one waiting to start, if any, shared by every
    /// batch accepted meanwhile; else one starting now, when none is in flight and the last one started at least
    /// <see cref="ReadSpacing"/> ago; else one that waits for both. Never fails: null when the list could not be read
    /// (logged).</summary>
    private Task<RecordValue?> ReadAfterNow(string key)
    {
        lock (_reading)
        {
            if (_readWaiting is { } waiting)
            {
                return waiting;
            }

            var inFlight = _readInFlight ?? Task.FromResult<RecordValue?>(null);
            if (inFlight.IsCompleted && time.GetElapsedTime(Interlocked.Read(ref _readStarted)) >= ReadSpacing)
            {
                return _readInFlight = ReadSavedAsync(key);
            }

            return _readWaiting = ReadAfterAsync(inFlight, key);
        }
    }

    private async Task<RecordValue?> ReadAfterAsync(Task<RecordValue?> inFlight, string key)
    {
        // Always continues later, so never inside the lock of the caller that made this task (this runs on the thread
        // pool, where there is no context to capture).
        await inFlight.ConfigureAwait(ConfigureAwaitOptions.ForceYielding | ConfigureAwaitOptions.ContinueOnCapturedContext);
        var spacing = ReadSpacing - time.GetElapsedTime(Interlocked.Read(ref _readStarted));
        if (spacing > TimeSpan.Zero)
        {
            // Batches accepted meanwhile still join this read: it has not started.
            await Task.Delay(spacing, time);
        }

        Task<RecordValue?> read;
        lock (_reading)
        {
            read = _readInFlight = ReadSavedAsync(key);
            _readWaiting = null;
        }

        return await read;
    }

    private async Task<RecordValue?> ReadSavedAsync(string key)
    {
        Interlocked.Exchange(ref _readStarted, time.GetTimestamp());
        try
        {
            var records = await overlay.GetRecordsAsync(CancellationToken.None).WaitAsync(Disseminator.Persistence, time);
            return await records.ReadAsync(RecordKeyOf(key));
        }
        catch (Exception e)
        {
            // Whatever the failure (the ring is not ready, the record unavailable, the silo stopping), the members
            // known here are reached anyway: only those saved elsewhere miss the message.
            SiloLog.SavedMembersUnread(logger, key, e.Message);
            return null;
        }
    }

    /// <summary>Takes the members of a saved list that this activation does not know, each on a fresh lease.</summary>
    private void Adopt(RecordValue saved)
    {
        var now = time.GetTimestamp();
        foreach (var member in serializer.Deserialize(saved.Data) ?? [])
        {
            _members.TryAdd(member.Id, (member, now));
        }
    }

    /// <summary>The entries whose lease runs and whose silo is alive; the others are dropped.</summary>
    private MemberEndpoint[] Live()
    {
        var snapshot = membership.CurrentSnapshot;
        foreach (var (id, (member, renewed)) in _members.ToList())
        {
            if (time.GetElapsedTime(renewed) > (member.Observer is null ? Lease : ClientLease)
                || (member.Silo is { } memberSilo && snapshot.GetSiloStatus(memberSilo) is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping))
            {
                _members.Remove(id);
            }
        }

        return [.. _members.Values.Select(m => m.Member)];
    }

    /// <summary>Writes the member list to the ring (renewals of known entries are not written).</summary>
    private async Task SaveAsync()
    {
        // One write at a time, each of the list as it is when the write starts, so the last write holds the latest list.
        await _saving.WaitAsync();
        try
        {
            var records = await overlay.GetRecordsAsync(CancellationToken.None);
            var result = await records.CompareAndSwapAsync(RecordKey, _savedVersion, Serialized());
            if (!result.Success && result.Current is not null)
            {
                // Another activation of the key wrote meanwhile (an older one stepping aside, or a second one while
                // Orleans' grain directory and the ring settle): its members stay in the list, or a broadcast accepted
                // by an activation that reads the list would miss them.
                Adopt(result.Current);
                result = await records.CompareAndSwapAsync(RecordKey, result.Current.Version, Serialized());
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

    private byte[] Serialized() => serializer.SerializeToArray(_members.Values.Select(m => m.Member).ToArray());

    /// <summary>When the ring has moved the name's root to another node, this activation steps aside; the next call
    /// places the grain on the new root's silo, where it reads the member list back from the ring.</summary>
    private Task CheckRootAsync(CancellationToken cancellationToken)
    {
        if (overlay.Host?.Node is { IsReady: true } node && !node.IsRootFor(RingKey))
        {
            this.DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }
}
