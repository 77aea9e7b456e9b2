namespace Iris.Calls;

/// <summary>The last <c>capacity</c> ids added, the oldest forgotten first: a bounded memory of ids, whatever the rate.</summary>
internal sealed class LastIds(int capacity)
{
    private readonly Lock _lock = new();
    private readonly Guid[] _ring = new Guid[capacity];
    private readonly HashSet<Guid> _set = new(capacity);
    private int _next;
    private volatile bool _empty = true;

    /// <summary>Whether no id was ever added: the common case of a process that sends only where it has members too,
    /// checked without the lock.</summary>
    public bool IsEmpty => _empty;

    public void Add(ReadOnlySpan<Protocol.Disseminated> messages)
    {
        lock (_lock)
        {
            foreach (var message in messages)
            {
                if (!_set.Add(message.Id))
                {
                    continue;
                }

                if (_set.Count > _ring.Length)
                {
                    _set.Remove(_ring[_next]);
                }

                _ring[_next] = message.Id;
                _next = (_next + 1) % _ring.Length;
            }

            _empty = false;
        }
    }

    public bool Contains(Guid id)
    {
        lock (_lock)
        {
            return _set.Contains(id);
        }
    }
}
