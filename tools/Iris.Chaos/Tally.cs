using System.Collections.Concurrent;

namespace Iris.Chaos;

/// <summary>Counts by name (an exception's type, a tunnel's close reason), thread-safe.</summary>
internal sealed class Tally
{
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    public void Add(string name) => _counts.AddOrUpdate(name, 1, (_, count) => count + 1);

    public long Total => _counts.Values.Sum();

    public SortedDictionary<string, long> Snapshot() => new(_counts, StringComparer.Ordinal);
}
