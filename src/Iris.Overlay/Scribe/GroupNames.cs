namespace Iris.Overlay.Scribe;

/// <summary>How a name maps to Scribe group keys: split over <c>k</c> groups <c>name#0</c> … <c>name#k-1</c>.</summary>
public static class GroupNames
{
    /// <summary>The keys of the <paramref name="splits"/> groups of <paramref name="name"/>.</summary>
    public static NodeKey[] Keys(string name, int splits)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(splits, 1);
        var keys = new NodeKey[splits];
        for (var i = 0; i < splits; i++)
        {
            keys[i] = NodeKey.FromName(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{name}#{i}"));
        }

        return keys;
    }
}
