using System.Globalization;

namespace Iris.Membership;

/// <summary>The whole Orleans membership table of one cluster, as stored in one replicated record on the ring.</summary>
[GenerateSerializer]
internal sealed class MembershipTableState
{
    [Id(0)]
    public List<MembershipRow> Rows { get; set; } = [];

    [Id(1)]
    public int Version { get; set; }

    [Id(2)]
    public string VersionEtag { get; set; } = "0";

    /// <summary>Source of row and version etags, so every etag ever handed out is new.</summary>
    [Id(3)]
    public long EtagCounter { get; set; } = 1;

    /// <summary>Which table this is: drawn when the table is created. Two rings that formed apart each create one;
    /// when they merge, the ring keeps one record, and a silo that joined the other table finds a different id.</summary>
    [Id(4)]
    public Guid TableId { get; set; }

    public TableVersion TableVersion => new(Version, VersionEtag);

    public string NewEtag() => (EtagCounter++).ToString(CultureInfo.InvariantCulture);

    public MembershipRow? Find(SiloAddress silo) => Rows.Find(r => r.Entry.SiloAddress.Equals(silo));

    public MembershipTableData ToData(Func<MembershipRow, bool>? filter = null) =>
        new([.. Rows.Where(filter ?? (_ => true)).Select(r => Tuple.Create(r.Entry, r.Etag))], TableVersion);
}

/// <summary>One silo's row and its etag.</summary>
[GenerateSerializer]
internal sealed class MembershipRow
{
    [Id(0)]
    public required MembershipEntry Entry { get; set; }

    [Id(1)]
    public required string Etag { get; set; }
}
