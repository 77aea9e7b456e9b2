using System.Net;
using Iris.Membership;
using Iris.Overlay.Pastry;
using Iris.Overlay.Records;
using Iris.Simulator;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans;
using Orleans.Runtime;
using Orleans.Serialization;

namespace Iris.Tests.Membership;

/// <summary>Orleans' membership table contract (as its MembershipTableTestsBase states it), against the table kept
/// in a replicated record on a simulated ring.</summary>
public sealed class OverlayMembershipTableTests : IDisposable
{
    private static readonly ServiceProvider Services = new ServiceCollection()
        .AddSerializer(builder => builder.AddAssembly(typeof(OverlayMembershipTable).Assembly))
        .BuildServiceProvider();

    private readonly PastrySimulation _ring;
    private readonly Dictionary<PastryNode, RecordStore> _stores;
    private int _generation = 1;

    public OverlayMembershipTableTests()
    {
        _ring = new PastrySimulation(new PastrySimulationOptions { Seed = 5 });
        _ring.AddNodes(30, TimeSpan.FromMilliseconds(2));
        Assert.True(_ring.Stabilise(TimeSpan.FromSeconds(60)) is not null);
        _stores = _ring.Nodes.ToDictionary(n => n, n => new RecordStore(n, _ring.Timers));
    }

    public void Dispose() => _ring.Dispose();

    private OverlayMembershipTable Table(int node, string cluster = "test") =>
        new(_ => Task.FromResult(_stores[_ring.Nodes[node]]), Services.GetRequiredService<Serializer<MembershipTableState>>(), cluster, NullLogger<OverlayMembershipTable>.Instance, time: _ring.Time);

    private MembershipEntry Entry(SiloStatus status = SiloStatus.Joining) => new()
    {
        SiloAddress = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), _generation++),
        Status = status,
        HostName = "host",
        SiloName = "silo" + _generation,
        StartTime = DateTime.UtcNow,
        IAmAliveTime = DateTime.UtcNow,
        SuspectTimes = [],
    };

    [Fact]
    public void A_new_table_is_empty_at_version_zero_and_inserted_rows_are_read_back_from_any_node()
    {
        var table = Table(3);
        _ring.Await(table.InitializeMembershipTable(true));
        var empty = _ring.Await(table.ReadAll());
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        var entry = Entry();
        Assert.True(_ring.Await(table.InsertRow(entry, empty.Version.Next())));
        var all = _ring.Await(Table(20).ReadAll());
        var (read, etag) = Assert.Single(all.Members);
        Assert.Equal(entry.SiloAddress, read.SiloAddress);
        Assert.Equal(SiloStatus.Joining, read.Status);
        Assert.Equal(1, all.Version.Version);
        Assert.NotEqual(empty.Version.VersionEtag, all.Version.VersionEtag);
        Assert.Single(_ring.Await(table.ReadRow(entry.SiloAddress)).Members);
        Assert.Empty(_ring.Await(table.ReadRow(Entry().SiloAddress)).Members);
        Assert.False(string.IsNullOrEmpty(etag));
    }

    [Fact]
    public void Inserts_and_updates_respect_the_row_etag_and_the_table_version_etag()
    {
        var table = Table(5);
        _ring.Await(table.InitializeMembershipTable(true));
        var start = _ring.Await(table.ReadAll()).Version;
        var entry = Entry();
        Assert.True(_ring.Await(table.InsertRow(entry, start.Next())));
        Assert.False(_ring.Await(table.InsertRow(entry, start.Next())));
        Assert.False(_ring.Await(table.InsertRow(Entry(), start.Next())));

        var now = _ring.Await(table.ReadAll());
        var etag = now.Members[0].Item2;
        entry.Status = SiloStatus.Active;
        Assert.False(_ring.Await(table.UpdateRow(entry, "not-the-etag", now.Version.Next())));
        Assert.False(_ring.Await(table.UpdateRow(entry, etag, start.Next())));
        Assert.True(_ring.Await(table.UpdateRow(entry, etag, now.Version.Next())));
        var updated = _ring.Await(table.ReadAll());
        Assert.Equal(SiloStatus.Active, updated.Members[0].Item1.Status);
        Assert.Equal(2, updated.Version.Version);
    }

    [Fact]
    public void I_am_alive_moves_the_row_time_and_etag_but_not_the_table_version()
    {
        var table = Table(7);
        _ring.Await(table.InitializeMembershipTable(true));
        var entry = Entry(SiloStatus.Active);
        Assert.True(_ring.Await(table.InsertRow(entry, _ring.Await(table.ReadAll()).Version.Next())));
        var before = _ring.Await(table.ReadAll());

        entry.IAmAliveTime = before.Members[0].Item1.IAmAliveTime.AddMinutes(1);
        _ring.Await(table.UpdateIAmAlive(entry));
        var after = _ring.Await(table.ReadAll());
        Assert.Equal(entry.IAmAliveTime, after.Members[0].Item1.IAmAliveTime);
        Assert.NotEqual(before.Members[0].Item2, after.Members[0].Item2);
        Assert.Equal(before.Version, after.Version);
    }

    [Fact]
    public void Cleanup_removes_only_dead_rows_older_than_the_date()
    {
        var table = Table(9);
        _ring.Await(table.InitializeMembershipTable(true));
        var old = Entry(SiloStatus.Dead);
        old.IAmAliveTime = old.StartTime = DateTime.UtcNow.AddDays(-2);
        var alive = Entry(SiloStatus.Active);
        Assert.True(_ring.Await(table.InsertRow(old, _ring.Await(table.ReadAll()).Version.Next())));
        Assert.True(_ring.Await(table.InsertRow(alive, _ring.Await(table.ReadAll()).Version.Next())));

        _ring.Await(table.CleanupDefunctSiloEntries(DateTimeOffset.UtcNow.AddDays(-1)));
        Assert.Equal(alive.SiloAddress, Assert.Single(_ring.Await(table.ReadAll()).Members).Item1.SiloAddress);
    }

    [Fact]
    public void Of_two_silos_inserting_against_the_same_table_version_exactly_one_wins()
    {
        var a = Table(2);
        var b = Table(25);
        _ring.Await(a.InitializeMembershipTable(true));
        var version = _ring.Await(a.ReadAll()).Version;
        var first = a.InsertRow(Entry(), version.Next());
        var second = b.InsertRow(Entry(), version.Next());
        var results = _ring.Await(Task.WhenAll(first, second));
        Assert.Equal(1, results.Count(r => r));
        Assert.Single(_ring.Await(a.ReadAll()).Members);
    }

    [Fact]
    public void The_table_survives_the_death_of_its_records_root()
    {
        var table = Table(11);
        _ring.Await(table.InitializeMembershipTable(true));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(_ring.Await(table.InsertRow(Entry(), _ring.Await(table.ReadAll()).Version.Next())));
        }

        var root = _ring.TrueRoot(Iris.Overlay.NodeKey.FromName("iris/orleans-membership/test"));
        Assert.NotEqual(_ring.Nodes[11], root);
        _stores[root].Dispose();
        _ring.Crash(root);
        Assert.True(_ring.Stabilise(TimeSpan.FromSeconds(30)) is not null);

        var after = _ring.Await(table.ReadAll());
        Assert.Equal(3, after.Members.Count);
        Assert.Equal(3, after.Version.Version);
    }

    [Fact]
    public void A_silo_that_starts_while_the_ring_cannot_answer_for_the_table_waits_for_it_instead_of_failing()
    {
        // The table exists; then one node is cut off from the rest, as a silo declared dead on the minority side of a
        // split is when it starts again. Its start must not fail (the silo would stay out for good once the split
        // heals): it tries again until the ring answers.
        _ring.Await(Table(10).InitializeMembershipTable(true));
        Assert.True(_ring.Await(Table(10).InsertRow(Entry(SiloStatus.Active), _ring.Await(Table(10).ReadAll()).Version.Next())));
        _ring.Network.Partition([_ring.Nodes[3].Self.Address]);
        _ring.Run(TimeSpan.FromSeconds(30));

        var starting = Table(3).InitializeMembershipTable(true);
        _ring.PumpFor(starting, TimeSpan.FromSeconds(60));
        Assert.False(starting.IsCompleted, $"the start ended while the node was cut off: {starting.Exception?.GetBaseException().Message}");

        _ring.Network.Heal();
        _ring.Await(starting, TimeSpan.FromSeconds(120));
        Assert.Single(_ring.Await(Table(3).ReadAll()).Members);
    }

    [Fact]
    public void Clusters_with_different_ids_have_separate_tables()
    {
        var red = Table(1, "red");
        var blue = Table(1, "blue");
        _ring.Await(red.InitializeMembershipTable(true));
        _ring.Await(blue.InitializeMembershipTable(true));
        Assert.True(_ring.Await(red.InsertRow(Entry(), _ring.Await(red.ReadAll()).Version.Next())));
        Assert.Empty(_ring.Await(blue.ReadAll()).Members);
    }

    [Fact]
    public void A_silo_that_finds_another_table_than_the_one_it_joined_adds_its_row_to_it_past_both_versions()
    {
        // Two rings formed apart, each with a table; when they merged, the record kept the other side's table.
        var ours = Table(3);
        _ring.Await(ours.InitializeMembershipTable(true));
        var self = Entry(SiloStatus.Active);
        Assert.True(_ring.Await(ours.InsertRow(self, _ring.Await(ours.ReadAll()).Version.Next())));
        for (var i = 0; i < 3; i++)
        {
            var version = _ring.Await(ours.ReadAll()).Version;
            var (entry, etag) = _ring.Await(ours.ReadRow(self.SiloAddress)).Members[0];
            Assert.True(_ring.Await(ours.UpdateRow(entry, etag, version.Next())));
        }

        Assert.Equal(4, _ring.Await(ours.ReadAll()).Version.Version);
        var theirs = Entry(SiloStatus.Active);
        Replace(new MembershipTableState { TableId = Guid.NewGuid(), Version = 2, VersionEtag = "7", EtagCounter = 8, Rows = [new MembershipRow { Entry = theirs, Etag = "6" }] });

        var seen = _ring.Await(ours.ReadAll());
        Assert.Equal([self.SiloAddress, theirs.SiloAddress], seen.Members.Select(m => m.Item1.SiloAddress).Order());
        Assert.All(seen.Members, m => Assert.Equal(SiloStatus.Active, m.Item1.Status));
        Assert.Equal(5, seen.Version.Version);

        // Every other silo reads the table with both rows, at a version past the one it had (2).
        var elsewhere = _ring.Await(Table(20).ReadAll());
        Assert.Equal(2, elsewhere.Members.Count);
        Assert.Equal(5, elsewhere.Version.Version);

        // Adopted once: the silo's writes go on in the table it joined now.
        var (mine, myEtag) = _ring.Await(ours.ReadRow(self.SiloAddress)).Members[0];
        mine.IAmAliveTime = DateTime.UtcNow;
        _ring.Await(ours.UpdateIAmAlive(mine));
        Assert.Equal(5, _ring.Await(Table(20).ReadAll()).Version.Version);
        Assert.NotEqual(myEtag, _ring.Await(ours.ReadRow(self.SiloAddress)).Members[0].Item2);
    }

    [Fact]
    public void A_silo_removed_from_the_table_it_joined_is_not_added_back()
    {
        var ours = Table(3);
        _ring.Await(ours.InitializeMembershipTable(true));
        var self = Entry(SiloStatus.Active);
        Assert.True(_ring.Await(ours.InsertRow(self, _ring.Await(ours.ReadAll()).Version.Next())));

        // Another silo declares it dead, and later removes the dead row.
        var other = Table(20);
        var version = _ring.Await(other.ReadAll()).Version;
        var (entry, etag) = _ring.Await(other.ReadRow(self.SiloAddress)).Members[0];
        entry.Status = SiloStatus.Dead;
        entry.IAmAliveTime = DateTime.UtcNow.AddDays(-10);
        entry.StartTime = DateTime.UtcNow.AddDays(-10);
        Assert.True(_ring.Await(other.UpdateRow(entry, etag, version.Next())));
        _ring.Await(other.CleanupDefunctSiloEntries(DateTimeOffset.UtcNow.AddDays(-1)));

        Assert.Empty(_ring.Await(ours.ReadAll()).Members);
        Assert.Empty(_ring.Await(other.ReadAll()).Members);
    }

    /// <summary>Puts <paramref name="state"/> in the membership record of cluster "test", whatever it held.</summary>
    private void Replace(MembershipTableState state)
    {
        var key = Iris.Overlay.NodeKey.FromName("iris/orleans-membership/test");
        var store = _stores[_ring.Nodes[7]];
        var current = _ring.Await(store.ReadAsync(key));
        var data = Services.GetRequiredService<Serializer<MembershipTableState>>().SerializeToArray(state);
        Assert.True(_ring.Await(store.CompareAndSwapAsync(key, current?.Version ?? 0, data)).Success);
    }
}
