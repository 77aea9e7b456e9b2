namespace Iris.Calls;

/// <summary>A <see cref="Random"/> that many threads may draw from: every draw takes a lock around the one it wraps (a
/// seeded one in tests, so that choices repeat).</summary>
internal sealed class LockedRandom(Random inner) : Random
{
    /// <summary>The service key of the <see cref="Random"/> Iris draws from (jitter, member choice, placement
    /// fallback): tests may register a seeded one under it first.</summary>
    public const string ServiceKey = "Iris";

    private readonly Lock _lock = new();

    public override int Next()
    {
        lock (_lock)
        {
            return inner.Next();
        }
    }

    public override int Next(int maxValue)
    {
        lock (_lock)
        {
            return inner.Next(maxValue);
        }
    }

    public override int Next(int minValue, int maxValue)
    {
        lock (_lock)
        {
            return inner.Next(minValue, maxValue);
        }
    }

    public override double NextDouble()
    {
        lock (_lock)
        {
            return inner.NextDouble();
        }
    }

    public override void NextBytes(byte[] buffer)
    {
        lock (_lock)
        {
            inner.NextBytes(buffer);
        }
    }

    public override void NextBytes(Span<byte> buffer)
    {
        lock (_lock)
        {
            inner.NextBytes(buffer);
        }
    }

    protected override double Sample() => NextDouble();
}
