namespace Iris.Protocol;

/// <summary>What a frame of a tunnel carries.</summary>
internal enum TunnelFrameKind : byte
{
    /// <summary>A chunk of a message, more to follow.</summary>
    Chunk,

    /// <summary>The last (or only) chunk of a message.</summary>
    Final,

    /// <summary>The message being sent was abandoned: drop its chunks received so far.</summary>
    Abort,

    /// <summary>The sender closed the tunnel gracefully; nothing follows.</summary>
    Close,
}

/// <summary>One frame of one direction of a tunnel, numbered in sending order from 0.</summary>
[GenerateSerializer]
[Immutable]
internal readonly record struct TunnelFrame(
    [property: Id(0)] long Sequence, [property: Id(1)] TunnelFrameKind Kind, [property: Id(2)] byte[] Data)
{
    /// <summary>
    /// What a chunk costs of the receiver's window beyond its bytes: what holding it costs the receiver (the frame,
    /// the array's header, its place in the queues). Counting bytes alone, a window of 4 MiB held 262,144 messages of
    /// 16 bytes, about 26 MB at the receiver, and a saturated tunnel queued them all.
    /// </summary>
    public const int CreditOverhead = 64;

    /// <summary>What a chunk of <paramref name="bytes"/> bytes costs of the receiver's window.</summary>
    public static int Cost(int bytes) => bytes + CreditOverhead;
}

/// <summary>What the process at the other end says of a tunnel it was sent something for.</summary>
internal enum TunnelStatus : byte
{
    /// <summary>Open there.</summary>
    Open,

    /// <summary>Closed there gracefully, a moment ago.</summary>
    Closed,

    /// <summary>Its opener gave up waiting for the member to accept.</summary>
    Abandoned,

    /// <summary>Not known there: that process restarted, or the tunnel failed there.</summary>
    Unknown,

    /// <summary>Ended there a moment ago because that process is stopping gracefully.</summary>
    Stopped,
}

/// <summary>A member's answer to an opener: where the member's end is and its receive window. (A process with no member
/// of the cluster answers <see cref="MemberRefusedException"/> instead, as for a request.)</summary>
[GenerateSerializer]
[Immutable]
internal sealed record TunnelAccepted([property: Id(0)] MemberEndpoint Member, [property: Id(1)] int WindowBytes);
