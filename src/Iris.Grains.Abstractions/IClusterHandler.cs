namespace Iris;

/// <summary>What a member of a cluster does with what reaches it.</summary>
public interface IClusterHandler
{
    /// <summary>Handles a request and returns the reply. An exception reaches the caller as a
    /// <see cref="RemoteException"/> carrying its message.</summary>
    Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken);

    /// <summary>Handles a broadcast to the cluster. Delivered once to each member.</summary>
    Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken);
}

/// <summary>What a subscriber of a topic does with each publication.</summary>
public interface ITopicHandler
{
    /// <summary>Handles one message published on the topic. Delivered once to each subscriber.</summary>
    Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken);
}
