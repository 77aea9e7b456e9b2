namespace Iris;

/// <summary>
/// An ordered, flow-controlled stream of messages between the process that opened it and one member of a cluster.
/// Messages arrive in the order sent, each once, while the tunnel is open. A sender may be ahead of its receiver by at
/// most the receiver's window (default 4 MiB); past it, <see cref="SendAsync"/> waits until the receiving application
/// consumes. Once closed, every operation throws <see cref="TunnelClosedException"/> saying why.
/// </summary>
public interface ITunnel : IAsyncDisposable
{
    /// <summary>The cluster the tunnel leads to (for the opener) or comes in on (for the member).</summary>
    string Cluster { get; }

    /// <summary>
    /// Sends one message. Completes when the message is accepted within the credit window, not when it is
    /// delivered; waits while the window is full. Cancelling a waiting send discards that message (the receiver never
    /// sees a part of it) and leaves the tunnel usable. A message over the maximum size (default 16 MiB) throws
    /// <see cref="TunnelMessageTooLargeException"/> and the tunnel stays usable.
    /// </summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default);

    /// <summary>Receives the next message. After the peer closed and everything it sent was received, or once the
    /// tunnel failed, throws <see cref="TunnelClosedException"/>. <paramref name="cancellationToken"/> ends a wait for a
    /// message, never the taking of one that has arrived: a handler reading with its own token, which a close cancels,
    /// still gets every message sent before the close.</summary>
    ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken = default);

    /// <summary>Receives messages until the peer closes the tunnel gracefully (then the sequence ends); a failure of the
    /// tunnel throws <see cref="TunnelClosedException"/>.</summary>
    IAsyncEnumerable<byte[]> ReadAllAsync(CancellationToken cancellationToken = default);

    /// <summary>Closes the tunnel gracefully: everything sent before reaches the peer first, then the peer's receives
    /// end. Sends after closing throw. Disposing closes too.</summary>
    Task CloseAsync(CancellationToken cancellationToken = default);
}

/// <summary>Why a tunnel closed.</summary>
public enum TunnelCloseReason
{
    /// <summary>This side closed it.</summary>
    Closed,

    /// <summary>The other side closed it gracefully.</summary>
    ClosedByPeer,

    /// <summary>The other side's process or silo died or stopped answering.</summary>
    PeerDied,

    /// <summary>The member serving the tunnel left the cluster.</summary>
    MemberUnregistered,

    /// <summary>A message arrived that was larger than this side accepts.</summary>
    MessageTooLarge,

    /// <summary>The opener gave up waiting before the member's answer came.</summary>
    OpenerTimedOut,

    /// <summary>The member's handler does not serve tunnels, or refused this one.</summary>
    Refused,

    /// <summary>The other side's process shut down gracefully (its silo or client was asked to stop) and said so
    /// before it went: not a failure, but nothing more comes on this tunnel.</summary>
    PeerStopped,
}

/// <summary>The tunnel is closed; <see cref="Reason"/> says why.</summary>
[GenerateSerializer]
public sealed class TunnelClosedException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public TunnelClosedException(string cluster, TunnelCloseReason reason, string? detail = null)
        : base(Describe(cluster, reason, detail), cluster)
    {
        Reason = reason;
        Detail = detail;
    }

    /// <summary>Why the tunnel closed.</summary>
    [Id(0)]
    public TunnelCloseReason Reason { get; }

    /// <summary>More on the cause, when there is more: a refusing handler's message, for instance.</summary>
    [Id(1)]
    public string? Detail { get; }

    private static string Describe(string cluster, TunnelCloseReason reason, string? detail) => reason switch
    {
        TunnelCloseReason.Closed => $"The tunnel to cluster '{cluster}' was closed by this side.",
        TunnelCloseReason.ClosedByPeer => $"The tunnel of cluster '{cluster}' was closed by the other side; everything it sent was received.",
        TunnelCloseReason.PeerDied => $"The other side of the tunnel of cluster '{cluster}' is gone (its process or silo died or stopped answering). Open a new tunnel.",
        TunnelCloseReason.MemberUnregistered => $"The member serving the tunnel of cluster '{cluster}' left the cluster. Open a new tunnel to reach another member.",
        TunnelCloseReason.MessageTooLarge => $"A message larger than the receiver accepts was sent on the tunnel of cluster '{cluster}'. Raise Iris:Tunnels:MaxMessageBytes on both sides or send smaller messages.",
        TunnelCloseReason.OpenerTimedOut => $"The opener of a tunnel of cluster '{cluster}' gave up before the member accepted it.",
        TunnelCloseReason.PeerStopped => $"The other side of the tunnel of cluster '{cluster}' shut down gracefully (its process was asked to stop). Open a new tunnel to reach another member.",
        TunnelCloseReason.Refused => $"The member of cluster '{cluster}' refused the tunnel: {detail ?? "its handler does not serve tunnels"}.",
        _ => $"The tunnel of cluster '{cluster}' closed ({reason}).",
    } + (detail is null || reason == TunnelCloseReason.Refused ? string.Empty : $" ({detail})");
}

/// <summary>A message was larger than the tunnel's maximum message size. Nothing was sent; the tunnel stays usable.</summary>
[GenerateSerializer]
public sealed class TunnelMessageTooLargeException : IrisException
{
    /// <summary>Creates the exception.</summary>
    public TunnelMessageTooLargeException(string cluster, long size, long limit)
        : base($"A message of {size} bytes is over the {limit}-byte limit of the tunnel of cluster '{cluster}'. Nothing was sent; split the message or raise Iris:Tunnels:MaxMessageBytes on both sides.", cluster)
    {
        Size = size;
        Limit = limit;
    }

    /// <summary>Size of the refused message, in bytes.</summary>
    [Id(0)]
    public long Size { get; }

    /// <summary>The largest message the tunnel carries, in bytes.</summary>
    [Id(1)]
    public long Limit { get; }
}
