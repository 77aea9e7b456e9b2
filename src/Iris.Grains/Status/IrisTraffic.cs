using System.Diagnostics.Metrics;
using Iris.Diagnostics;
using Iris.Status;

namespace Iris.Grains.Status;

/// <summary>
/// Listens to this process's <c>Iris</c> meter and keeps the last <see cref="Window"/> of it in one-second slots: call
/// rates, and latencies in log-scale buckets (each about 9 % wide) from which percentiles are read. Started with the
/// silo; read by the silo's status (<see cref="NodeStatusGrain"/>). The meter counts the whole process, so silos
/// that share a process (tests) share their traffic.
/// </summary>
internal sealed class IrisTraffic : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    /// <summary>How far back rates and latencies reach.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    private const int SlotCount = 11; // the window plus the second under way
    private const int BucketsPerDoubling = 8;
    private const int BucketCount = 28 * BucketsPerDoubling; // 1 µs to about 4.5 minutes

    private readonly TimeProvider _time;
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly Slot[] _slots = new Slot[SlotCount];
    private readonly long _start;

    public IrisTraffic(TimeProvider time)
        : this(time, IrisMetrics.Meter)
    {
    }

    /// <summary>Listens to <paramref name="meter"/>'s instruments of the <c>Iris</c> names (tests give a meter of their own).</summary>
    public IrisTraffic(TimeProvider time, Meter meter)
    {
        _time = time;
        _start = time.GetTimestamp();
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot();
        }

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == meter && KindOf(instrument.Name) is not Kind.None)
            {
                listener.EnableMeasurementEvents(instrument, KindOf(instrument.Name));
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => Count((Kind)state!, value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, _, state) => Latency((Kind)state!, value));
        _listener.Start();
    }

    private enum Kind
    {
        None,
        Requests,
        Broadcasts,
        Publications,
        TunnelMessages,
        TunnelOpens,
        Handled,
        Delivered,
        RequestLatency,
        HandOverLatency,
        TunnelOpenLatency,
    }

    private static Kind KindOf(string instrument) => instrument switch
    {
        "iris.requests" => Kind.Requests,
        "iris.broadcasts" => Kind.Broadcasts,
        "iris.publications" => Kind.Publications,
        "iris.tunnel.messages" => Kind.TunnelMessages,
        "iris.tunnel.opens" => Kind.TunnelOpens,
        "iris.requests.handled" => Kind.Handled,
        "iris.deliveries" => Kind.Delivered,
        "iris.request.duration" => Kind.RequestLatency,
        "iris.handover.duration" => Kind.HandOverLatency,
        "iris.tunnel.open.duration" => Kind.TunnelOpenLatency,
        _ => Kind.None,
    };

    private void Count(Kind kind, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (kind == Kind.TunnelMessages)
        {
            // Each tunnel message is counted sent and received; the rate is of messages sent.
            foreach (var tag in tags)
            {
                if (tag.Key == "direction" && !Equals(tag.Value, "sent"))
                {
                    return;
                }
            }
        }

        Interlocked.Add(ref Current().Counts[(int)kind], value);
    }

    private void Latency(Kind kind, double milliseconds)
    {
        var micros = Math.Max(1, milliseconds * 1000);
        var bucket = Math.Clamp((int)(Math.Log2(micros) * BucketsPerDoubling), 0, BucketCount - 1);
        Current().Histogram(kind).Record(bucket, milliseconds);
    }

    /// <summary>
    /// The slot of the second under way, emptied first if it last held an older second. Measurements are counted
    /// without a lock (every request and tunnel message passes here); only the turn of a second takes one. A measurement
    /// that raced with the turn may land in the new second: rates are approximate by that much.
    /// </summary>
    private Slot Current()
    {
        var second = (long)_time.GetElapsedTime(_start).TotalSeconds;
        var slot = _slots[second % SlotCount];
        if (slot.Second != second)
        {
            lock (_lock)
            {
                if (slot.Second != second)
                {
                    slot.Reset(second);
                }
            }
        }

        return slot;
    }

    /// <summary>Rates and latencies over the last <see cref="Window"/> and the second under way (or since start, when
    /// that is shorter).</summary>
    public TrafficStatus Read()
    {
        lock (_lock)
        {
            var elapsed = _time.GetElapsedTime(_start).TotalSeconds;
            var now = (long)elapsed;
            var span = Math.Max(Math.Min(elapsed, Window.TotalSeconds + (elapsed - now)), 0.001);
            var counts = new long[Enum.GetValues<Kind>().Length];
            var latencies = new Histogram[] { new(), new(), new() };
            foreach (var slot in _slots)
            {
                if (slot.Second < 0 || now - slot.Second > Window.TotalSeconds)
                {
                    continue;
                }

                for (var i = 0; i < counts.Length; i++)
                {
                    counts[i] += Interlocked.Read(ref slot.Counts[i]);
                }

                latencies[0].Add(slot.Histogram(Kind.RequestLatency));
                latencies[1].Add(slot.Histogram(Kind.HandOverLatency));
                latencies[2].Add(slot.Histogram(Kind.TunnelOpenLatency));
            }

            return new TrafficStatus(
                Math.Round(span, 1),
                counts[(int)Kind.Requests] / span,
                counts[(int)Kind.Broadcasts] / span,
                counts[(int)Kind.Publications] / span,
                counts[(int)Kind.TunnelMessages] / span,
                counts[(int)Kind.TunnelOpens] / span,
                latencies[0].ToStatus(),
                latencies[1].ToStatus(),
                latencies[2].ToStatus(),
                counts[(int)Kind.Handled] / span,
                counts[(int)Kind.Delivered] / span);
        }
    }

    /// <summary>Nothing to do: being made, with the silo's other lifecycle participants, started the listener.</summary>
    public void Participate(ISiloLifecycle lifecycle)
    {
    }

    public void Dispose() => _listener.Dispose();

    private sealed class Slot
    {
        private readonly Histogram[] _histograms = [new(), new(), new()];
        private long _second = -1;

        /// <summary>The second (since start) this slot holds; -1 before its first.</summary>
        public long Second => Volatile.Read(ref _second);

        public long[] Counts { get; } = new long[Enum.GetValues<Kind>().Length];

        public Histogram Histogram(Kind kind) => _histograms[kind - Kind.RequestLatency];

        /// <summary>Empties the slot for <paramref name="second"/>; under the traffic's lock.</summary>
        public void Reset(long second)
        {
            for (var i = 0; i < Counts.Length; i++)
            {
                Interlocked.Exchange(ref Counts[i], 0);
            }

            foreach (var histogram in _histograms)
            {
                histogram.Clear();
            }

            Volatile.Write(ref _second, second);
        }
    }

    private sealed class Histogram
    {
        private readonly long[] _buckets = new long[BucketCount];
        private long _count;
        private long _maxBits;

        public long Count => Interlocked.Read(ref _count);

        public double Max => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _maxBits));

        public void Record(int bucket, double milliseconds)
        {
            Interlocked.Increment(ref _buckets[bucket]);
            Interlocked.Increment(ref _count);
            var bits = BitConverter.DoubleToInt64Bits(milliseconds);
            for (var seen = Interlocked.Read(ref _maxBits); milliseconds > BitConverter.Int64BitsToDouble(seen);)
            {
                var found = Interlocked.CompareExchange(ref _maxBits, bits, seen);
                if (found == seen)
                {
                    break;
                }

                seen = found;
            }
        }

        public void Clear()
        {
            for (var i = 0; i < _buckets.Length; i++)
            {
                Interlocked.Exchange(ref _buckets[i], 0);
            }

            Interlocked.Exchange(ref _count, 0);
            Interlocked.Exchange(ref _maxBits, 0);
        }

        /// <summary>Adds <paramref name="other"/>'s measurements to this one (a histogram of the read, not shared).</summary>
        public void Add(Histogram other)
        {
            for (var i = 0; i < _buckets.Length; i++)
            {
                _buckets[i] += Interlocked.Read(ref other._buckets[i]);
            }

            _count += other.Count;
            _maxBits = BitConverter.DoubleToInt64Bits(Math.Max(Max, other.Max));
        }

        public LatencyStatus ToStatus() =>
            _count == 0 ? LatencyStatus.None : new LatencyStatus(_count, Percentile(0.50), Percentile(0.90), Percentile(0.99), Math.Round(Max, 3));

        // The upper edge of the bucket that holds the percentile, capped by the largest value seen.
        private double Percentile(double fraction)
        {
            var rank = (long)Math.Ceiling(fraction * _count);
            long seen = 0;
            for (var i = 0; i < _buckets.Length; i++)
            {
                seen += _buckets[i];
                if (seen >= rank)
                {
                    return Math.Round(Math.Min(Math.Pow(2, (i + 1) / (double)BucketsPerDoubling) / 1000, Max), 3);
                }
            }

            return Math.Round(Max, 3);
        }
    }
}
