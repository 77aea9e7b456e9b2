namespace Iris;

/// <summary>
/// A cluster, addressed by its name: the grain's key. A local, stateless entry point on whichever silo receives the
/// call; it sends the request on to one member chosen by capacity and load.
/// </summary>
public interface IClusterGrain : IGrainWithStringKey
{
    /// <summary>Sends <paramref name="request"/> to one member and returns its reply.</summary>
    /// <exception cref="NoMembersException">The cluster has no members (answered at once, not after the timeout).</exception>
    /// <exception cref="IrisTimeoutException">No reply within <paramref name="timeout"/>.</exception>
    /// <exception cref="RemoteException">The member's handler threw.</exception>
    /// <exception cref="IrisOverloadedException">Every member is at its limits.</exception>
    /// <exception cref="IrisOutcomeUnknownException">The member's process was lost while it held the request.</exception>
    /// <remarks><paramref name="timeout"/> is at most 10 minutes; the call's own response timeout outlasts that, so
    /// the caller always hears one of the errors above, never Orleans' response timeout.</remarks>
    [ResponseTimeout("00:10:30")]
    Task<byte[]> Request(byte[] request, TimeSpan timeout);

    /// <summary>Delivers <paramref name="message"/> once to every member of the cluster. Returns once the message is
    /// accepted for dissemination; handler time never reaches the caller.</summary>
    Task Broadcast(byte[] message);
}

/// <summary>A topic, addressed by its name: the grain's key.</summary>
public interface ITopicGrain : IGrainWithStringKey
{
    /// <summary>Delivers <paramref name="message"/> once to every subscriber; a subscription made before the call
    /// receives it. Returns once the message is accepted for dissemination.</summary>
    Task Publish(byte[] message);
}
