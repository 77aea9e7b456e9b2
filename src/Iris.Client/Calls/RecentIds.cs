namespace Iris.Calls;

/// <summary>Message ids seen in the last minute or two: a generation of ids is dropped every minute.</summary>
internal sealed class RecentIds(TimeProvider time)
{
    private static readonly TimeSpan Generation = TimeSpan.FromMinutes(1);
    private readonly Lock _lock = new();
    private HashSet<Guid> _current = [];
    private HashSet<Guid> _previous = [];
    private long _started = time.GetTimestamp();

    /// <summary>Remembers <paramref name="id"/>; returns whether it is new.</summary>
    public bool Add(Guid id)
    {
        lock (_lock)
        {
            Rotate();
            return !_previous.Contains(id) && _current.Add(id);
        }
    }

    public bool Contains(Guid id)
    {
        lock (_lock)
        {
            Rotate();
            return _current.Contains(id) || _previous.Contains(id);
        }
    }

    private void Rotate()
    {
        if (time.GetElapsedTime(_started) > Generation)
        {
            (_previous, _current) = (_current, _previous);
            _current.Clear();
            _started = time.GetTimestamp();
        }
    }
}
