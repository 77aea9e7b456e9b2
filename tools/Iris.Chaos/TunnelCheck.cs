namespace Iris.Chaos;

/// <summary>What came back on one tunnel: each echoed sequence number once, in order, intact, or not.</summary>
internal sealed class TunnelCheck
{
    private readonly HashSet<long> _seen = [];
    private readonly Lock _gate = new();
    private long _highest = -1;

    public long Reordered { get; private set; }

    public long Duplicated { get; private set; }

    public long Corrupt { get; private set; }

    public long Received
    {
        get
        {
            lock (_gate)
            {
                return _seen.Count;
            }
        }
    }

    public void Add(ReadOnlySpan<byte> message)
    {
        var sequence = TunnelMessage.Read(message);
        lock (_gate)
        {
            if (sequence is not { } number)
            {
                Corrupt++;
            }
            else if (!_seen.Add(number))
            {
                Duplicated++;
            }
            else if (number < _highest)
            {
                Reordered++;
            }
            else
            {
                _highest = number;
            }
        }
    }
}
