using Iris.Overlay.Pastry;
using Iris.Overlay.Transport;

namespace Iris.Simulator;

/// <summary>
/// Counts the overlay messages the simulated nodes send, by wire type, and apart from them the messages a lookup
/// costs: each hop of a routed message on <see cref="PastrySimulation.LookupChannel"/> and the acknowledgement of that
/// hop. Every other message (heartbeats, probes, joins, repair) is maintenance. Counts sends, including those the
/// network then drops.
/// </summary>
internal sealed class MessageTally
{
    private readonly long[] _byType = new long[byte.MaxValue + 1];

    // Hops of lookups received and not yet acknowledged, by (sender, hop id): their acknowledgements count as lookup
    // messages. The simulation runs on one thread (every node on one fake clock), so no lock.
    private readonly HashSet<(NodeAddress Sender, ulong HopId)> _lookupHops = [];

    /// <summary>Every message sent so far.</summary>
    public long Sent { get; private set; }

    /// <summary>Lookup hops and their acknowledgements sent so far.</summary>
    public long LookupMessages { get; private set; }

    /// <summary>Messages of one wire type sent so far.</summary>
    public long this[MessageType type] => _byType[(int)type];

    /// <summary>Counts per wire type, named as in <see cref="MessageType"/>, types never sent left out.</summary>
    public IReadOnlyDictionary<string, long> ByType() =>
        Enum.GetValues<MessageType>().Where(t => _byType[(int)t] > 0).ToDictionary(t => t.ToString(), t => _byType[(int)t]);

    /// <summary>A transport that counts what <paramref name="inner"/> sends and receives into this tally.</summary>
    public IOverlayTransport Wrap(IOverlayTransport inner) => new CountingTransport(this, inner);

    private static bool IsLookup(OverlayMessage message) =>
        message is RouteMessage { Kind: RouteKind.Application, Channel: PastrySimulation.LookupChannel };

    private void OnSend(NodeAddress destination, OverlayMessage message)
    {
        Sent++;
        _byType[(int)message.Type]++;
        if (IsLookup(message) || (message is RouteAckMessage ack && _lookupHops.Remove((destination, ack.HopId))))
        {
            LookupMessages++;
        }
    }

    private void OnReceive(OverlayMessage message)
    {
        if (IsLookup(message) && message is RouteMessage { HopId: not 0 } route)
        {
            _lookupHops.Add((route.Sender.Address, route.HopId));
        }
    }

    private sealed class CountingTransport(MessageTally tally, IOverlayTransport inner) : IOverlayTransport
    {
        public NodeAddress LocalAddress => inner.LocalAddress;

        public int MaxPayload => inner.MaxPayload;

        public void Send(NodeAddress destination, OverlayMessage message)
        {
            tally.OnSend(destination, message);
            inner.Send(destination, message);
        }

        public void SetReceiver(IOverlayReceiver receiver) => inner.SetReceiver(new CountingReceiver(tally, receiver));
    }

    private sealed class CountingReceiver(MessageTally tally, IOverlayReceiver inner) : IOverlayReceiver
    {
        public void Receive(OverlayMessage message)
        {
            tally.OnReceive(message);
            inner.Receive(message);
        }
    }
}
