namespace Iris;

/// <summary>What a member of a cluster does with what reaches it.</summary>
public interface IClusterHandler
{
    /// <summary>Handles a request and returns the reply. An exception reaches the caller as a
    /// <see cref="RemoteException"/> carrying its message.</summary>
    Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken);

    /// <summary>Handles a broadcast to the cluster. Delivered once to each member.</summary>
    Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken);

    /// <summary>
    /// Serves a tunnel opened to this member: converse on <paramref name="tunnel"/> and return when done; the tunnel
    /// is then closed gracefully if it is still open. The opener learns the tunnel is accepted once this method is
    /// running; to refuse, throw before the first <c>await</c> (the opener gets a <see cref="TunnelClosedException"/>
    /// with <see cref="TunnelCloseReason.Refused"/> and the exception's message). <paramref name="cancellationToken"/>
    /// is cancelled when the tunnel closes. The default refuses: members serve tunnels only if they say so.
    /// </summary>
    Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) =>
        throw new NotSupportedException("its handler does not serve tunnels");
}

/// <summary>What a subscriber of a topic does with each publication.</summary>
public interface ITopicHandler
{
    /// <summary>Handles one message published on the topic. Delivered once to each subscriber.</summary>
    Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken);
}
