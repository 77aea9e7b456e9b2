namespace Iris;

/// <summary>
/// Iris for application code, from dependency injection in silos and in Orleans clients: serve a cluster, subscribe
/// to topics, and send to clusters and topics.
/// </summary>
public interface IIrisClient
{
    /// <summary>Becomes a member of <paramref name="cluster"/>: requests and broadcasts for it may reach
    /// <paramref name="handler"/>. Returns once the member can be reached from every silo; disposing the result
    /// leaves the cluster.</summary>
    Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberLimits? limits = null, CancellationToken cancellationToken = default) =>
        RegisterAsync(cluster, handler, new MemberOptions { Limits = limits ?? new MemberLimits() }, cancellationToken);

    /// <summary>Becomes a member of <paramref name="cluster"/> with <paramref name="options"/>. Returns once the member
    /// can be reached from every process; disposing the result leaves the cluster: the member stops being chosen
    /// first, goes on serving what reached it, and is removed once no process still chooses it.</summary>
    Task<IAsyncDisposable> RegisterAsync(string cluster, IClusterHandler handler, MemberOptions options, CancellationToken cancellationToken = default);

    /// <summary>Subscribes <paramref name="handler"/> to <paramref name="topic"/>; disposing the result unsubscribes. The
    /// handler gets this process's publications from the call on, and other processes' once the task completes.</summary>
    Task<IAsyncDisposable> SubscribeAsync(string topic, ITopicHandler handler, CancellationToken cancellationToken = default);

    /// <summary>Sends a request to one member of <paramref name="cluster"/>; see <see cref="IClusterGrain.Request"/>. The
    /// request runs at most once: a member that refused it before it started (overloaded, or leaving) is passed over
    /// for another; a member whose process is lost while it holds the request gives
    /// <see cref="IrisOutcomeUnknownException"/>.</summary>
    Task<byte[]> RequestAsync(string cluster, byte[] request, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Sends a message to every member of <paramref name="cluster"/>. Returns once the message is accepted for
    /// dissemination, not when handlers have run; each member gets it at most once. Members in the sending process get
    /// it at once, so cancelling stops only its hand-over to the other processes.</summary>
    Task BroadcastAsync(string cluster, byte[] message, CancellationToken cancellationToken = default);

    /// <summary>Publishes a message to every subscriber of <paramref name="topic"/>, as
    /// <see cref="BroadcastAsync"/> sends one to every member.</summary>
    Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Opens a tunnel to one member of <paramref name="cluster"/>, chosen by load as for a request. Throws
    /// <see cref="NoMembersException"/> at once when the cluster has no members, <see cref="IrisTimeoutException"/>
    /// when no member accepted within <paramref name="timeout"/>, and <see cref="TunnelClosedException"/> with
    /// <see cref="TunnelCloseReason.Refused"/> when the member's handler refused.
    /// </summary>
    Task<ITunnel> OpenTunnelAsync(string cluster, TimeSpan timeout, CancellationToken cancellationToken = default);
}
