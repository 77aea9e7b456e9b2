using Iris.Calls;
using Iris.Grains.Diagnostics;
using Iris.Overlay;
using Iris.Overlay.Records;
using Microsoft.Extensions.Logging;
using Orleans.Serialization;

namespace Iris.Membership;

/// <summary>
/// Orleans' membership table kept in one replicated record on the Pastry ring, keyed by the cluster id: no database.
/// Every change is a read, a change to the table in memory with Orleans' own rules (a row is inserted only if absent,
/// updated only with its current etag, and either only if the table version's etag still matches), and a
/// compare-and-swap of the whole record on its version. Each read and swap is a Paxos round on a majority of the
/// record's replicas (docs/records.md), so the table is linearizable, and on the minority side of a partition it fails
/// (RecordUnavailableException) rather than diverges; when a swap loses a race, the change is checked again against the
/// newer table and retried.
/// <para>
/// Rings that formed apart (a silo that heard no beacon while it started, a network split at start) each create a table;
/// when the rings merge, the record keeps one of them. A silo whose row is in the other one would never see the silos of
/// this one (Orleans ignores a table whose version is not newer than the one it has), or would read itself as dead. So a
/// silo that finds a table other than the one it joined (by <see cref="MembershipTableState.TableId"/>) adds its own
/// row to it, with a version past both, before Orleans sees it: the two clusters become one. A silo removed from the
/// table it joined is not added back.
/// </para>
/// </summary>
internal sealed class OverlayMembershipTable(
    Func<CancellationToken, Task<RecordStore>> store, Serializer<MembershipTableState> serializer, string clusterId, ILogger<OverlayMembershipTable> logger,
    Random? random = null, TimeProvider? time = null)
    : IMembershipTable
{
    /// <summary>
    /// How long a starting silo goes on trying to read the table while the ring cannot answer for its record (its root
    /// does not answer while the ring repairs, or a majority of its replicas is out of reach: this silo is on the
    /// minority side of a split): Orleans' own time for joining a cluster (<c>MaxJoinAttemptTime</c>, 5 minutes). A
    /// silo that was declared dead during a split starts again as soon as the split heals, while the ring is still
    /// merging; failing its start then would leave it out for good.
    /// </summary>
    public static readonly TimeSpan StartRetryFor = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan FirstStartPause = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LongestStartPause = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Random _random = random ?? new LockedRandom(new Random());
    private readonly NodeKey _key = NodeKey.FromName("iris/orleans-membership/" + clusterId);
    private readonly Lock _lock = new();

    /// <summary>This silo's row as it last wrote it, and the table it wrote it in; null until it inserted it.</summary>
    private (MembershipEntry Entry, Guid Table)? _self;

    /// <summary>The highest table version handed to Orleans.</summary>
    private int _versionSeen;

    /// <summary>Reads the table (creating it when the ring has none), trying again for up to <see cref="StartRetryFor"/>
    /// while the ring cannot answer for its record.</summary>
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        var started = _time.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await InitializeOnceAsync(tryInitTableVersion).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RecordTimeoutException or RecordUnavailableException && _time.GetElapsedTime(started) < StartRetryFor)
            {
                var pause = TimeSpan.FromTicks(Math.Min(FirstStartPause.Ticks << Math.Min(attempt - 1, 8), LongestStartPause.Ticks));
                SiloLog.MembershipTableNotYet(logger, clusterId, e.Message, pause);
                await Task.Delay(pause, _time).ConfigureAwait(false);
            }
        }
    }

    private async Task InitializeOnceAsync(bool tryInitTableVersion)
    {
        var (state, version) = await ReadAsync().ConfigureAwait(false);
        if (version == 0 && tryInitTableVersion)
        {
            state.TableId = Guid.NewGuid();
            var result = await (await store(CancellationToken.None).ConfigureAwait(false)).CompareAndSwapAsync(_key, 0, serializer.SerializeToArray(state)).ConfigureAwait(false);
            SiloLog.MembershipTableOnRing(logger, clusterId, result.Success);
        }
    }

    public Task DeleteMembershipTableEntries(string clusterId) =>
        ChangeAsync(state =>
        {
            state.Rows.Clear();
            return true;
        });

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) =>
        ChangeAsync(state => state.Rows.RemoveAll(r =>
            r.Entry.Status == SiloStatus.Dead && new DateTime(Math.Max(r.Entry.IAmAliveTime.Ticks, r.Entry.StartTime.Ticks), DateTimeKind.Utc) < beforeDate.UtcDateTime) > 0);

    public async Task<MembershipTableData> ReadRow(SiloAddress key) =>
        Seen((await ReadAsync().ConfigureAwait(false)).State).ToData(r => r.Entry.SiloAddress.Equals(key));

    public async Task<MembershipTableData> ReadAll() => Seen((await ReadAsync().ConfigureAwait(false)).State).ToData();

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) =>
        ChangeAsync(state =>
        {
            if (state.Find(entry.SiloAddress) is not null || state.VersionEtag != tableVersion.VersionEtag)
            {
                return false;
            }

            state.Rows.Add(new MembershipRow { Entry = entry, Etag = state.NewEtag() });
            state.Version = tableVersion.Version;
            state.VersionEtag = state.NewEtag();
            return true;
        },
        state => Wrote(entry, state)); // Orleans inserts only its own silo's row.

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) =>
        ChangeAsync(state =>
        {
            if (state.Find(entry.SiloAddress) is not { } row || row.Etag != etag || state.VersionEtag != tableVersion.VersionEtag)
            {
                return false;
            }

            row.Entry = entry;
            row.Etag = state.NewEtag();
            state.Version = tableVersion.Version;
            state.VersionEtag = state.NewEtag();
            return true;
        },
        state => WroteIfSelf(entry, state));

    public Task UpdateIAmAlive(MembershipEntry entry) =>
        ChangeAsync(state =>
        {
            if (state.Find(entry.SiloAddress) is not { } row)
            {
                return false;
            }

            row.Entry.IAmAliveTime = entry.IAmAliveTime;
            row.Etag = state.NewEtag();
            return true;
        },
        state => WroteIfSelf(state.Find(entry.SiloAddress)!.Entry, state));

    /// <summary>The current table: when it is not the one this silo joined, first with this silo's row added.</summary>
    private async Task<(MembershipTableState State, long Version)> ReadAsync()
    {
        var records = await store(CancellationToken.None).ConfigureAwait(false);
        for (var attempt = 0; ; attempt++)
        {
            var (state, version) = await ReadRawAsync(records).ConfigureAwait(false);
            if (!Adopt(state))
            {
                return (state, version);
            }

            var result = await records.CompareAndSwapAsync(_key, version, serializer.SerializeToArray(state)).ConfigureAwait(false);
            if (result.Success)
            {
                // Joined now: only once the row is in (a lost race reads the table again and adds it again).
                lock (_lock)
                {
                    _self = (_self!.Value.Entry, state.TableId);
                }

                return (state, result.Current?.Version ?? version + 1);
            }

            SiloLog.MembershipTableRetry(logger, clusterId, attempt + 1);
            await Task.Delay(_random.Next(5, 20 * Math.Min(attempt + 1, 10))).ConfigureAwait(false);
        }
    }

    private async Task<(MembershipTableState State, long Version)> ReadRawAsync(RecordStore records)
    {
        var value = await records.ReadAsync(_key).ConfigureAwait(false);
        return value is null ? (new MembershipTableState(), 0) : (serializer.Deserialize(value.Data)!, value.Version);
    }

    /// <summary>
    /// When <paramref name="state"/> is a table other than the one this silo joined, adds this silo's row to it (as the
    /// silo last wrote it, without the suspicions of the other table's silos), with a version past every version Orleans
    /// has seen here and past the table's own, so that the silos of both tables take it as news. Returns whether it did;
    /// the silo counts the table as the one it joined once the change is swapped in.
    /// </summary>
    private bool Adopt(MembershipTableState state)
    {
        MembershipEntry entry;
        int seen;
        lock (_lock)
        {
            if (_self is not { } self || state.TableId == self.Table || state.Rows.Count == 0 || self.Entry.Status == SiloStatus.Dead)
            {
                return false;
            }

            entry = self.Entry;
            seen = _versionSeen;
        }

        if (state.Find(entry.SiloAddress) is null)
        {
            var adopted = new MembershipEntry
            {
                SiloAddress = entry.SiloAddress,
                Status = entry.Status,
                SuspectTimes = [],
                ProxyPort = entry.ProxyPort,
                HostName = entry.HostName,
                SiloName = entry.SiloName,
                RoleName = entry.RoleName,
                UpdateZone = entry.UpdateZone,
                FaultZone = entry.FaultZone,
                StartTime = entry.StartTime,
                IAmAliveTime = entry.IAmAliveTime,
            };
            state.Rows.Add(new MembershipRow { Entry = adopted, Etag = state.NewEtag() });
        }

        SiloLog.MembershipTableAdopted(logger, clusterId, entry.SiloAddress, state.Rows.Count);
        state.Version = Math.Max(state.Version, seen) + 1;
        state.VersionEtag = state.NewEtag();
        return true;
    }

    /// <summary>Notes the table version handed to Orleans.</summary>
    private MembershipTableState Seen(MembershipTableState state)
    {
        lock (_lock)
        {
            _versionSeen = Math.Max(_versionSeen, state.Version);
        }

        return state;
    }

    private void Wrote(MembershipEntry entry, MembershipTableState state)
    {
        lock (_lock)
        {
            _self = (entry, state.TableId);
            _versionSeen = Math.Max(_versionSeen, state.Version);
        }
    }

    private void WroteIfSelf(MembershipEntry entry, MembershipTableState state)
    {
        bool self;
        lock (_lock)
        {
            self = _self is { } known && known.Entry.SiloAddress.Equals(entry.SiloAddress);
        }

        if (self)
        {
            Wrote(entry, state);
        }
    }

    /// <summary>Applies <paramref name="change"/> to the current table and swaps it in; when another change got in
    /// first, applies it again to the newer table. Returns false when the change itself declined.</summary>
    private async Task<bool> ChangeAsync(Func<MembershipTableState, bool> change, Action<MembershipTableState>? changed = null)
    {
        var records = await store(CancellationToken.None).ConfigureAwait(false);
        for (var attempt = 0; ; attempt++)
        {
            var (state, version) = await ReadAsync().ConfigureAwait(false);
            if (!change(state))
            {
                return false;
            }

            var result = await records.CompareAndSwapAsync(_key, version, serializer.SerializeToArray(state)).ConfigureAwait(false);
            if (result.Success)
            {
                changed?.Invoke(state);
                return true;
            }

            SiloLog.MembershipTableRetry(logger, clusterId, attempt + 1);
            await Task.Delay(_random.Next(5, 20 * Math.Min(attempt + 1, 10))).ConfigureAwait(false);
        }
    }
}
