namespace Iris.Status;

/// <summary>Whether a name is a cluster (members, requests, broadcasts, tunnels) or a topic (subscribers, publications).</summary>
public enum NameKind
{
    /// <summary>A cluster's members.</summary>
    Cluster,

    /// <summary>A topic's subscribers.</summary>
    Topic,
}

/// <summary>
/// What one silo knows of itself at one moment: its place in the ring, the names served in its process, the rendezvous
/// splits whose ring root it is, the Scribe trees it is in and the traffic of the last seconds. Read with
/// <see cref="INodeStatusGrain"/>, or for every silo at once with <see cref="IrisNetworkStatus.GetAsync"/>.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record NodeStatus
{
    /// <summary>The silo's Orleans address.</summary>
    [Id(0)] public required string Silo { get; init; }

    /// <summary>The node's ring key, 32 hex digits.</summary>
    [Id(1)] public required string RingKey { get; init; }

    /// <summary>The ring key as a fraction of the ring, in [0, 1): where a picture of the ring puts the node.</summary>
    [Id(2)] public required double RingPosition { get; init; }

    /// <summary>The overlay's address (host:port) of the node.</summary>
    [Id(3)] public required string OverlayAddress { get; init; }

    /// <summary>Whether the node has joined a ring.</summary>
    [Id(4)] public required bool InRing { get; init; }

    /// <summary>The gateway Orleans clients are offered in beacons, if the silo takes clients.</summary>
    [Id(5)] public string? Gateway { get; init; }

    /// <summary>The leaf set: the nodes closest on the ring, counter-clockwise then clockwise.</summary>
    [Id(6)] public required IReadOnlyList<RingNeighbour> LeafSet { get; init; }

    /// <summary>How many entries the routing table holds.</summary>
    [Id(7)] public required int RoutingTableEntries { get; init; }

    /// <summary>Clusters and topics with members or subscribers in this silo's process (relay clients included).</summary>
    [Id(8)] public required IReadOnlyList<LocalName> Served { get; init; }

    /// <summary>The rendezvous splits active on this silo: it is their name's ring root.</summary>
    [Id(9)] public required IReadOnlyList<RendezvousStatus> Rendezvous { get; init; }

    /// <summary>The Scribe trees this node is in.</summary>
    [Id(10)] public required IReadOnlyList<TreeStatus> Trees { get; init; }

    /// <summary>Rates and latencies of the last seconds, from the <c>Iris</c> meter of this silo's process.</summary>
    [Id(11)] public required TrafficStatus Traffic { get; init; }

    /// <summary>When the silo took this status, by its own clock.</summary>
    [Id(12)] public required DateTimeOffset Taken { get; init; }
}

/// <summary>A node of a leaf set.</summary>
[GenerateSerializer]
[Immutable]
public sealed record RingNeighbour([property: Id(0)] string RingKey, [property: Id(1)] double RingPosition, [property: Id(2)] string Address);

/// <summary>A cluster or topic served in a silo's process: how many members or subscribers, and the capacity the
/// members offer (requests per second, as measured; 0 for topics).</summary>
[GenerateSerializer]
[Immutable]
public sealed record LocalName([property: Id(0)] NameKind Kind, [property: Id(1)] string Name, [property: Id(2)] int Count, [property: Id(3)] double Capacity);

/// <summary>One split of a name, kept by a rendezvous grain on its ring root, with the processes registered there.</summary>
[GenerateSerializer]
[Immutable]
public sealed record RendezvousStatus(
    [property: Id(0)] NameKind Kind, [property: Id(1)] string Name, [property: Id(2)] int Split, [property: Id(3)] IReadOnlyList<RegisteredProcess> Processes);

/// <summary>A process registered with a rendezvous: a silo (<see cref="Silo"/> set) or an Orleans client, with the
/// capacity it reported (requests per second; 0 for a topic's subscribers).</summary>
[GenerateSerializer]
[Immutable]
public sealed record RegisteredProcess([property: Id(0)] string Process, [property: Id(1)] string? Silo, [property: Id(2)] double Capacity);

/// <summary>
/// A Scribe tree the node is in: the group's ring key, the rendezvous key it belongs to where this node knows it
/// (<c>cluster/name#split</c>), whether the node is the root, its parent, and its fan-out (children) with the capacity
/// they report.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record TreeStatus(
    [property: Id(0)] string Group,
    [property: Id(1)] string? Name,
    [property: Id(2)] bool IsRoot,
    [property: Id(3)] string? Parent,
    [property: Id(4)] int Children,
    [property: Id(5)] double SubtreeCapacity);

/// <summary>
/// Rates (per second) over the last <see cref="WindowSeconds"/> seconds and latencies (milliseconds) in a silo's
/// process: calls made from it (by the silo's own members and grains, by <see cref="IClusterGrain"/> callers and by relay
/// clients; an Orleans client's calls count in the client) and work done by the members and subscribers in it
/// (<see cref="Handled"/>, <see cref="Delivered"/>).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record TrafficStatus(
    [property: Id(0)] double WindowSeconds,
    [property: Id(1)] double Requests,
    [property: Id(2)] double Broadcasts,
    [property: Id(3)] double Publications,
    [property: Id(4)] double TunnelMessages,
    [property: Id(5)] double TunnelOpens,
    [property: Id(6)] LatencyStatus RequestLatency,
    [property: Id(7)] LatencyStatus HandOverLatency,
    [property: Id(8)] LatencyStatus TunnelOpenLatency,
    [property: Id(9)] double Handled,
    [property: Id(10)] double Delivered);

/// <summary>Latency percentiles, in milliseconds, of <see cref="Count"/> calls (all 0 when there were none).</summary>
[GenerateSerializer]
[Immutable]
public sealed record LatencyStatus(
    [property: Id(0)] long Count, [property: Id(1)] double P50, [property: Id(2)] double P90, [property: Id(3)] double P99, [property: Id(4)] double Max)
{
    /// <summary>No calls.</summary>
    public static readonly LatencyStatus None = new(0, 0, 0, 0, 0);
}
