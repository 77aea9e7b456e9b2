using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>A Paxos ballot: a counter, then the proposing node's key to break ties. Ballots are compared only within
/// one configuration epoch; a seeded acceptor starts at <see cref="Zero"/>.</summary>
internal readonly record struct Ballot(long Counter, NodeKey Node) : IComparable<Ballot>
{
    public static Ballot Zero => default;

    public int CompareTo(Ballot other) => Counter != other.Counter ? Counter.CompareTo(other.Counter) : Node.CompareTo(other.Node);

    public static bool operator <(Ballot left, Ballot right) => left.CompareTo(right) < 0;

    public static bool operator >(Ballot left, Ballot right) => left.CompareTo(right) > 0;

    public static bool operator <=(Ballot left, Ballot right) => left.CompareTo(right) <= 0;

    public static bool operator >=(Ballot left, Ballot right) => left.CompareTo(right) >= 0;

    public override string ToString() => $"{Counter}.{Node.ToShortString()}";
}

/// <summary>An acceptor of a record: a node, and the run of its process (drawn at random when the store starts). A
/// node that restarted with the same key has forgotten its promises, so it is another acceptor.</summary>
internal readonly record struct RecordMember(NodeKey Key, ulong Incarnation, NodeAddress Address)
{
    public NodeHandle Handle => new(Key, Address);

    public bool Is(NodeKey key, ulong incarnation) => Key == key && Incarnation == incarnation;

    public override string ToString() => $"{Key.ToShortString()}/{Incarnation:x4}";
}

/// <summary>The acceptors of a record in one epoch. Values are chosen by a majority of <see cref="Members"/>.</summary>
internal sealed record RecordConfiguration(long Epoch, RecordMember[] Members)
{
    public int Majority => (Members.Length / 2) + 1;

    public bool Contains(NodeKey key, ulong incarnation) => Members.Any(m => m.Is(key, incarnation));

    public bool SameMembers(RecordConfiguration other) =>
        Members.Length == other.Members.Length && Members.All(m => other.Contains(m.Key, m.Incarnation));

    /// <summary>The epoch and each member's key and address, for logs and failure messages.</summary>
    public override string ToString() => $"epoch {Epoch} [{string.Join(", ", Members.Select(m => $"{m.Key.ToShortString()}@{m.Address}"))}]";

    /// <summary>
    /// Whether this configuration is the record's rather than <paramref name="other"/>: a later epoch, or the same epoch
    /// with other members and the smaller member list (by key, then incarnation). One record's epochs are chosen one
    /// after another, so two configurations of one epoch come from rings that formed apart and each created the record;
    /// once the rings merge, every root must pick the same one, and the other is replaced when the record next moves.
    /// </summary>
    public bool Supersedes(RecordConfiguration? other)
    {
        if (other is null || Epoch != other.Epoch)
        {
            return other is null || Epoch > other.Epoch;
        }

        if (SameMembers(other))
        {
            return false;
        }

        var mine = Members.OrderBy(m => m.Key).ThenBy(m => m.Incarnation).ToArray();
        var theirs = other.Members.OrderBy(m => m.Key).ThenBy(m => m.Incarnation).ToArray();
        for (var i = 0; i < Math.Min(mine.Length, theirs.Length); i++)
        {
            var order = mine[i].Key.CompareTo(theirs[i].Key);
            if (order == 0)
            {
                order = mine[i].Incarnation.CompareTo(theirs[i].Incarnation);
            }

            if (order != 0)
            {
                return order < 0;
            }
        }

        return mine.Length < theirs.Length;
    }

    /// <summary>The configuration among <paramref name="configurations"/> that supersedes the others; null for none.</summary>
    public static RecordConfiguration? Latest(IEnumerable<RecordConfiguration?> configurations)
    {
        RecordConfiguration? latest = null;
        foreach (var configuration in configurations)
        {
            if (configuration is not null && configuration.Supersedes(latest))
            {
                latest = configuration;
            }
        }

        return latest;
    }
}

/// <summary>Who asked for a write: the requesting node and its request number (offset by the requester's
/// incarnation, so a restarted requester does not reuse its old numbers).</summary>
internal readonly record struct WriteId(NodeKey Node, ulong Request);

/// <summary>
/// The replicated value of a record, as CASPaxos proposes it: version, data, the last writes applied (so a retried
/// write is recognised and not applied twice), and, once the configuration is being replaced, the next configuration
/// (the register is then stopped: nothing is written in this configuration after it).
/// </summary>
internal sealed record Register(long Version, byte[] Data, (WriteId Id, long Version)[] Recent, RecordConfiguration? Next)
{
    /// <summary>How many recent writes a register remembers.</summary>
    public const int RecentWrites = 64;

    public static Register Empty { get; } = new(0, [], [], null);

    public bool Stopped => Next is not null;

    /// <summary>The version a write produced, when it is among the recent ones.</summary>
    public long? VersionOf(WriteId id)
    {
        foreach (var (recent, version) in Recent)
        {
            if (recent == id)
            {
                return version;
            }
        }

        return null;
    }

    /// <summary>The register after <paramref name="id"/> wrote <paramref name="data"/> as the next version.</summary>
    public Register Write(byte[] data, WriteId id)
    {
        var recent = Recent.Length < RecentWrites ? Recent : Recent[1..];
        return new Register(Version + 1, data, [.. recent, (id, Version + 1)], null);
    }

    /// <summary>What callers see: null until the first write.</summary>
    public RecordValue? ToValue() => Version == 0 ? null : new RecordValue(Data, Version) { Writer = Recent.Length > 0 ? (Recent[^1].Id.Node, Recent[^1].Id.Request) : default };
}
