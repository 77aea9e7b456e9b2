namespace Iris.Chaos;

/// <summary>The clusters that <c>--overload</c> overloads: every member process also serves them with a
/// <see cref="SlowMember"/>, whose handler waits (as on a slow database, using no CPU) far longer than the offered
/// load allows, under small <see cref="MemberLimits"/>.</summary>
internal static class OverloadClusters
{
    /// <summary>Requests each slow member runs at once.</summary>
    public const int Slots = 2;

    /// <summary>Requests (of <see cref="Ids.Bytes"/> bytes) a slow member holds, running or waiting for a slot, before
    /// it refuses more: at most two wait behind the two running.</summary>
    public const int Held = 4;

    public static readonly IReadOnlyList<OverloadCluster> All =
    [
        new("slow-50ms", TimeSpan.FromMilliseconds(50)),
        new("slow-200ms", TimeSpan.FromMilliseconds(200)),
    ];

    public static MemberOptions Options { get; } = new()
    {
        Limits = new MemberLimits { MaxConcurrentRequests = Slots, MaxQueuedBytes = Held * Ids.Bytes },
    };

    public static OverloadCluster Find(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no overload cluster named {name}");
}

/// <summary>One overloaded cluster: its name and how long its handler takes per request.</summary>
internal sealed record OverloadCluster(string Name, TimeSpan HandlerTime)
{
    /// <summary>Requests per second <paramref name="members"/> members complete at most: slots over handler time.</summary>
    public double Capacity(int members) => members * OverloadClusters.Slots / HandlerTime.TotalSeconds;
}
