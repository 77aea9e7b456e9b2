using Iris.Overlay.Scribe;

namespace Iris.Protocol;

/// <summary>Who a broadcast or publication is for.</summary>
public enum AudienceKind : byte
{
    /// <summary>Every member of a cluster (a broadcast).</summary>
    Cluster,

    /// <summary>Every subscriber of a topic (a publication).</summary>
    Topic,
}

/// <summary>
/// A name with what it names: a cluster's members or a topic's subscribers. Its rendezvous keys are its
/// <see cref="GroupNames"/> splits (<c>cluster/name#0</c> … <c>#3</c>), whose ring keys are also the Scribe groups of
/// its trees.
/// </summary>
[GenerateSerializer]
[Immutable]
internal readonly record struct Audience([property: Id(0)] AudienceKind Kind, [property: Id(1)] string Name)
{
    /// <summary>How many rendezvous grains a name is split over.</summary>
    public const int Splits = GroupNames.DefaultSplits;

    public static Audience Cluster(string name) => new(AudienceKind.Cluster, name);

    public static Audience Topic(string name) => new(AudienceKind.Topic, name);

    private string KindPrefix => Kind == AudienceKind.Cluster ? "cluster/" : "topic/";

    /// <summary>The key of rendezvous grain <paramref name="split"/> of this name: <c>cluster/name#split</c> or
    /// <c>topic/name#split</c>.</summary>
    public string RendezvousKey(int split) => GroupNames.Name(KindPrefix, Name, split);

    /// <summary>The keys of all of this name's rendezvous grains.</summary>
    public string[] RendezvousKeys()
    {
        var keys = new string[Splits];
        for (var split = 0; split < keys.Length; split++)
        {
            keys[split] = RendezvousKey(split);
        }

        return keys;
    }

    public override string ToString() => KindPrefix + Name;
}
