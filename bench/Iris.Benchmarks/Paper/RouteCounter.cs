using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Iris.Benchmarks.Paper;

/// <summary>Counts the harness client's request calls by route (<c>iris.request.calls</c> on the <c>Iris</c> meter:
/// here, direct, grain), so a run shows whether requests went to the member's silo in one hop.</summary>
internal sealed class RouteCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _calls = new();

    public RouteCounter()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Iris" && instrument.Name == "iris.request.calls")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "route" && tag.Value is string route)
                {
                    _calls.AddOrUpdate(route, value, (_, n) => n + value);
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The share of the calls since the last <see cref="Take"/> or <see cref="TakeDirectShare"/> that went direct
    /// (0 to 1; 0 with no calls), resetting the counts.</summary>
    public double TakeDirectShare()
    {
        var taken = Drain();
        var total = taken.Values.Sum();
        return total == 0 ? 0 : (double)taken.GetValueOrDefault("direct") / total;
    }

    /// <summary>The shares of the calls since the last <see cref="Take"/>, as text ("direct 97%, grain 3%").</summary>
    public string Take()
    {
        var taken = Drain();
        var total = taken.Values.Sum();
        return total == 0
            ? "no calls"
            : string.Join(", ", taken.OrderByDescending(t => t.Value).Select(t => FormattableString.Invariant($"{t.Key} {100.0 * t.Value / total:F0}%")));
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>The calls counted per route since the last take, resetting the counts.</summary>
    private Dictionary<string, long> Drain()
    {
        var taken = new Dictionary<string, long>();
        foreach (var route in _calls.Keys)
        {
            if (_calls.TryRemove(route, out var n))
            {
                taken[route] = n;
            }
        }

        return taken;
    }
}
