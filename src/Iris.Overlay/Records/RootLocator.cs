using System.Text;
using Iris.Overlay.Kernel;
using Iris.Overlay.Pastry;
using Iris.Overlay.Timing;
using Iris.Overlay.Transport;

namespace Iris.Overlay.Records;

/// <summary>
/// Asks the root of a key who it is: the query is routed to the key's root, which answers straight back with the
/// tag its host gave it (for a silo, its Orleans address). This is how a grain keyed by a name is placed on the silo
/// whose overlay node is the name's root.
/// </summary>
internal sealed class RootLocator : IRouteHandler, IDisposable
{
    public const ushort Channel = 4;
    private const byte Query = 1;
    private const byte Answer = 2;

    private readonly PastryNode _pastry;
    private readonly PendingRequests<string> _queries;

    public RootLocator(PastryNode pastry, TimerQueue timers, string tag)
    {
        _pastry = pastry;
        Tag = tag;
        _queries = new PendingRequests<string>(timers, TimeSpan.FromMilliseconds(500), nameof(RootLocator));
        pastry.RegisterHandler(Channel, this);
    }

    /// <summary>What this node answers when it is the root of a queried key.</summary>
    public string Tag { get; set; }

    /// <summary>The tag of the root of <paramref name="key"/>; this node's own when it is the root.</summary>
    public Task<string> FindRootAsync(NodeKey key, TimeSpan timeout)
    {
        if (_pastry.IsRootFor(key))
        {
            return Task.FromResult(Tag);
        }

        return _queries.SendAsync(id => Send(key, id), timeout, () => new TimeoutException($"The root of {key} did not answer; the ring may be repairing."));
    }

    public void Deliver(RouteDelivery delivery)
    {
        var payload = delivery.Payload.Span;
        if (payload.Length >= 9 && payload[0] == Query)
        {
            var answer = new byte[9 + Encoding.UTF8.GetByteCount(Tag)];
            answer[0] = Answer;
            payload.Slice(1, 8).CopyTo(answer.AsSpan(1));
            Encoding.UTF8.GetBytes(Tag, answer.AsSpan(9));
            _pastry.SendDirect(delivery.Origin, Channel, answer);
        }
    }

    public void ReceiveDirect(DirectDelivery delivery)
    {
        var payload = delivery.Payload.Span;
        if (payload.Length < 9 || payload[0] != Answer)
        {
            return;
        }

        _queries.TryComplete(BitConverter.ToUInt64(payload.Slice(1, 8)), Encoding.UTF8.GetString(payload[9..]));
    }

    public void Dispose() => _queries.Dispose();

    private void Send(NodeKey key, ulong id)
    {
        var query = new byte[9];
        query[0] = Query;
        BitConverter.TryWriteBytes(query.AsSpan(1), id);
        _pastry.Route(key, Channel, query);
    }
}
