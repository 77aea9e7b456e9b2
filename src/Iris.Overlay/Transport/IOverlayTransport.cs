namespace Iris.Overlay.Transport;

/// <summary>
/// Carries typed overlay messages between node addresses. Sending never blocks and never throws for an unreachable or
/// dead destination: the message is dropped, and the ring notices through missing acknowledgements and heartbeats.
/// Implementations: <see cref="InMemoryNetwork"/> for tests and simulation; <see cref="TcpTransport"/> between
/// processes.
/// </summary>
internal interface IOverlayTransport
{
    /// <summary>The address other nodes use to reach this one.</summary>
    NodeAddress LocalAddress { get; }

    /// <summary>The largest payload a routed or direct message may carry on this transport; larger ones are refused
    /// before they are sent.</summary>
    int MaxPayload { get; }

    /// <summary>Queues <paramref name="message"/> for <paramref name="destination"/>. Per-destination order is kept. A
    /// message too large for the transport is refused (counted and logged, never thrown).</summary>
    void Send(NodeAddress destination, OverlayMessage message);

    /// <summary>
    /// Sets the single receiver of messages for this address. Messages from one sender arrive in the order sent;
    /// messages from different senders may arrive concurrently. The receiver must not block.
    /// </summary>
    void SetReceiver(IOverlayReceiver receiver);
}

/// <summary>Receives messages from an <see cref="IOverlayTransport"/>.</summary>
internal interface IOverlayReceiver
{
    /// <summary>Handles one message that arrived from the network.</summary>
    void Receive(OverlayMessage message);
}
