using System.Collections.Concurrent;
using Iris.Members;

namespace Iris.Patterns;

/// <summary>
/// This silo's view of where each cluster's members are: asked of the cluster's rendezvous grain, kept for a short
/// while, and dropped at once when this silo registers or unregisters members itself. Chooses the member silo for a
/// request in proportion to its capacity, discounted by the requests this silo already has in flight there.
/// </summary>
internal sealed class MemberDirectory(IGrainFactory grains, TimeProvider time)
{
    public static readonly TimeSpan CacheTime = TimeSpan.FromMilliseconds(500);

    private readonly ConcurrentDictionary<string, (MemberSilo[] Members, DateTimeOffset Fetched)> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Rendezvous grains per name: members register with all of them, senders rotate over them, so no one
    /// silo carries a popular name alone.</summary>
    public const int Splits = 4;

    private int _rotation;

    public static string ClusterKey(string cluster, int split) => $"cluster/{cluster}#{split}";

    public static string TopicKey(string topic, int split) => $"topic/{topic}#{split}";

    public static string[] ClusterKeys(string cluster) => [.. Enumerable.Range(0, Splits).Select(split => ClusterKey(cluster, split))];

    public static string[] TopicKeys(string topic) => [.. Enumerable.Range(0, Splits).Select(split => TopicKey(topic, split))];

    /// <summary>The split the next message of this silo goes through.</summary>
    public int NextSplit() => (int)((uint)Interlocked.Increment(ref _rotation) % Splits);

    public async Task<MemberSilo[]> MembersAsync(string key)
    {
        if (_cache.TryGetValue(key, out var cached) && time.GetUtcNow() - cached.Fetched < CacheTime)
        {
            return cached.Members;
        }

        var members = await grains.GetGrain<IRendezvousGrain>(key).GetMembers().ConfigureAwait(false);
        _cache[key] = (members, time.GetUtcNow());
        return members;
    }

    public void Forget(string key) => _cache.TryRemove(key, out _);

    /// <summary>
    /// Picks a member at random, weighted by its capacity over the square of (1 + requests in flight to it from
    /// here): a member that answers slowly piles up requests in flight, and the square makes that count, so a member
    /// three times slower gets clearly less.
    /// </summary>
    public MemberSilo Choose(MemberSilo[] members)
    {
        var weights = members.Select(m => m.Capacity / Math.Pow(1 + _inFlight.GetValueOrDefault(m.Id), 2)).ToArray();
        var pick = Random.Shared.NextDouble() * weights.Sum();
        for (var i = 0; i < members.Length; i++)
        {
            pick -= weights[i];
            if (pick < 0)
            {
                return members[i];
            }
        }

        return members[^1];
    }

    public IDisposable Track(string member)
    {
        _inFlight.AddOrUpdate(member, 1, (_, n) => n + 1);
        return new Release(this, member);
    }

    private sealed class Release(MemberDirectory directory, string member) : IDisposable
    {
        public void Dispose() => directory._inFlight.AddOrUpdate(member, 0, (_, n) => Math.Max(0, n - 1));
    }
}
