using System.Collections.Concurrent;
using Iris.Protocol;

namespace Iris.Balancing;

/// <summary>
/// This process's view of where each cluster's members are: asked of the cluster's rendezvous grains, kept for a short
/// while (<see cref="CacheTime"/>), and dropped at once when a call shows it stale or this process registers or
/// unregisters members itself. Chooses the member process for a request in proportion to its capacity, discounted by
/// the requests this process already has in flight there.
/// </summary>
internal sealed class MemberDirectory(IGrainFactory grains, TimeProvider time, Random random)
{
    /// <summary>How long a member list is kept. A member that joins waits this long before its registration returns,
    /// and one that leaves goes on serving this long after it stopped being offered: neither costs a request.</summary>
    public static readonly TimeSpan CacheTime = TimeSpan.FromMilliseconds(500);

    private readonly ConcurrentDictionary<string, (MemberEndpoint[] Members, long Fetched)> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Audience, string[]> _keys = new();
    private int _rotation;

    /// <summary>The rendezvous key the next message of this process for <paramref name="audience"/> goes through:
    /// senders rotate over a name's splits, so no one silo carries a popular name alone.</summary>
    public string NextKey(Audience audience) =>
        _keys.GetOrAdd(audience, static a => a.RendezvousKeys())[(int)((uint)Interlocked.Increment(ref _rotation) % Audience.Splits)];

    public async Task<MemberEndpoint[]> MembersAsync(string key)
    {
        if (_cache.TryGetValue(key, out var cached) && time.GetElapsedTime(cached.Fetched) < CacheTime)
        {
            return cached.Members;
        }

        var members = await grains.GetGrain<IRendezvousGrain>(key).GetMembers().ConfigureAwait(false);
        _cache[key] = (members, time.GetTimestamp());
        return members;
    }

    public void Forget(string key) => _cache.TryRemove(key, out _);

    /// <summary>Forgets every split of <paramref name="audience"/>.</summary>
    public void Forget(Audience audience)
    {
        foreach (var key in audience.RendezvousKeys())
        {
            Forget(key);
        }
    }

    /// <summary>
    /// Picks a member at random, weighted by its capacity over the square of (1 + requests in flight to it from
    /// here): a member that answers slowly piles up requests in flight, and the square makes that count, so a member
    /// three times slower gets clearly less.
    /// </summary>
    public MemberEndpoint Choose(IReadOnlyList<MemberEndpoint> members)
    {
        var weights = new double[members.Count];
        var total = 0.0;
        for (var i = 0; i < members.Count; i++)
        {
            var inFlight = 1 + _inFlight.GetValueOrDefault(members[i].Id);
            weights[i] = members[i].Capacity / (inFlight * (double)inFlight);
            total += weights[i];
        }

        var pick = random.NextDouble() * total;

        for (var i = 0; i < members.Count; i++)
        {
            pick -= weights[i];
            if (pick < 0)
            {
                return members[i];
            }
        }

        return members[^1];
    }

    /// <summary>Counts a request in flight to <paramref name="member"/> until the result is disposed.</summary>
    public InFlight Track(string member)
    {
        _inFlight.AddOrUpdate(member, 1, (_, n) => n + 1);
        return new InFlight(this, member);
    }

    internal readonly struct InFlight(MemberDirectory directory, string member) : IDisposable
    {
        public void Dispose() => directory._inFlight.AddOrUpdate(member, 0, (_, n) => Math.Max(0, n - 1));
    }
}
