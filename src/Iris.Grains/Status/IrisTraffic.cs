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
    {
        _time = time;
        _start = time.GetTimestamp();
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot();
        }

        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == IrisMetrics.MeterName && KindOf(instrument.Name) is not Kind.None)
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

        lock (_lock)
        {
            Current().Counts[(int)kind] += value;
        }
    }

    private void Latency(Kind kind, double milliseconds)
    {
        var micros = Math.Max(1, milliseconds * 1000);
        var bucket = Math.Clamp((int)(Math.Log2(micros) * BucketsPerDoubling), 0, BucketCount - 1);
        lock (_lock)
        {
            var histogram = Current().Histogram(kind);
            histogram.Buckets[bucket]++;
            histogram.Count++;
            histogram.Max = Math.Max(histogram.Max, milliseconds);
        }
    }

    /// <summary>The slot of the second under way, emptied first if it last held an older second. Under the lock.</summary>
    private Slot Current()
    {
        var second = (long)_time.GetElapsedTime(_start).TotalSeconds;
        var slot = _slots[second % SlotCount];
        if (slot.Second != second)
        {
            slot.Reset(second);
        }

        return slot;
    }

    /// <summary>Rates and latencies over the last <see cref="Window"/> (or since start, when that is shorter).</summary>
    public TrafficStatus Read()
    {
        lock (_lock)
        {
            var elapsed = _time.GetElapsedTime(_start).TotalSeconds;
            var now = (long)elapsed;
            var span = Math.Clamp(elapsed, 1, Window.TotalSeconds + 1);
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
                    counts[i] += slot.Counts[i];
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

        public long Second { get; private set; } = -1;

        public long[] Counts { get; } = new long[Enum.GetValues<Kind>().Length];

        public Histogram Histogram(Kind kind) => _histograms[kind - Kind.RequestLatency];

        public void Reset(long second)
        {
            Second = second;
            Array.Clear(Counts);
            foreach (var histogram in _histograms)
            {
                histogram.Clear();
            }
        }
    }

    private sealed class Histogram
    {
        public long[] Buckets { get; } = new long[BucketCount];

        public long Count { get; set; }

        public double Max { get; set; }

        public void Clear()
        {
            Array.Clear(Buckets);
            Count = 0;
            Max = 0;
        }

        public void Add(Histogram other)
        {
            for (var i = 0; i < Buckets.Length; i++)
            {
                Buckets[i] += other.Buckets[i];
            }

            Count += other.Count;
            Max = Math.Max(Max, other.Max);
        }

        public LatencyStatus ToStatus() =>
            Count == 0 ? LatencyStatus.None : new LatencyStatus(Count, Percentile(0.50), Percentile(0.90), Percentile(0.99), Math.Round(Max, 3));

        // The upper edge of the bucket that holds the percentile, capped by the largest value seen.
        private double Percentile(double fraction)
        {
            var rank = (long)Math.Ceiling(fraction * Count);
            long seen = 0;
            for (var i = 0; i < Buckets.Length; i++)
            {
                seen += Buckets[i];
                if (seen >= rank)
                {
                    return Math.Round(Math.Min(Math.Pow(2, (i + 1) / (double)BucketsPerDoubling) / 1000, Max), 3);
                }
            }

            return Math.Round(Max, 3);
        }
    }
}
