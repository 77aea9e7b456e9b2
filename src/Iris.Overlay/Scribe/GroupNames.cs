namespace Iris.Overlay.Scribe;

/// <summary>
/// How a name maps to Scribe group keys: split over <c>k</c> groups <c>name#0</c> … <c>name#k-1</c>, so that k roots
/// share a popular name's load. The one split scheme of Iris: the simulator's groups and the product's rendezvous
/// grains both use it.
/// </summary>
public static class GroupNames
{
    /// <summary>The split count of the product: every process of a network must agree on it, so it is fixed.</summary>
    public const int DefaultSplits = 4;

    /// <summary>The name of split <paramref name="split"/> of <paramref name="name"/>: <c>name#split</c>.</summary>
    public static string Name(string name, int split) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{name}#{split}");

    /// <summary>The name of split <paramref name="split"/> of <paramref name="prefix"/> followed by
    /// <paramref name="name"/>: <c>prefixname#split</c>, built as one string.</summary>
    internal static string Name(string prefix, string name, int split) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{prefix}{name}#{split}");

    /// <summary>The keys of the <paramref name="splits"/> groups of <paramref name="name"/>.</summary>
    public static NodeKey[] Keys(string name, int splits)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(splits, 1);
        var keys = new NodeKey[splits];
        for (var i = 0; i < splits; i++)
        {
            keys[i] = NodeKey.FromName(Name(name, i));
        }

        return keys;
    }
}
