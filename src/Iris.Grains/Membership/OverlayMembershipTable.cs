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
/// </summary>
internal sealed class OverlayMembershipTable(
    Func<CancellationToken, Task<RecordStore>> store, Serializer<MembershipTableState> serializer, string clusterId, ILogger<OverlayMembershipTable> logger,
    Random? random = null)
    : IMembershipTable
{
    private readonly Random _random = random ?? new LockedRandom(new Random());
    private readonly NodeKey _key = NodeKey.FromName("iris/orleans-membership/" + clusterId);

    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        var (state, version) = await ReadAsync().ConfigureAwait(false);
        if (version == 0 && tryInitTableVersion)
        {
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
        (await ReadAsync().ConfigureAwait(false)).State.ToData(r => r.Entry.SiloAddress.Equals(key));

    public async Task<MembershipTableData> ReadAll() => (await ReadAsync().ConfigureAwait(false)).State.ToData();

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
        });

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
        });

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
        });

    private async Task<(MembershipTableState State, long Version)> ReadAsync()
    {
        var value = await (await store(CancellationToken.None).ConfigureAwait(false)).ReadAsync(_key).ConfigureAwait(false);
        return value is null ? (new MembershipTableState(), 0) : (serializer.Deserialize(value.Data)!, value.Version);
    }

    /// <summary>Applies <paramref name="change"/> to the current table and swaps it in; when another change got in
    /// first, applies it again to the newer table. Returns false when the change itself declined.</summary>
    private async Task<bool> ChangeAsync(Func<MembershipTableState, bool> change)
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
                return true;
            }

            SiloLog.MembershipTableRetry(logger, clusterId, attempt + 1);
            await Task.Delay(_random.Next(5, 20 * Math.Min(attempt + 1, 10))).ConfigureAwait(false);
        }
    }
}
