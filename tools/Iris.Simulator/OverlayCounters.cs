using System.Diagnostics.Metrics;
using Iris.Overlay.Diagnostics;

namespace Iris.Simulator;

/// <summary>Totals of the overlay's counters while the listener lives (the process-wide <c>Iris.Overlay</c> meter).</summary>
internal sealed class OverlayCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _totals = [];

    public OverlayCounters()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == OverlayMetrics.Meter && instrument is Counter<long>)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (_totals)
            {
                _totals[instrument.Name] = _totals.GetValueOrDefault(instrument.Name) + value;
            }
        });
        _listener.Start();
    }

    public long this[string name]
    {
        get { lock (_totals) { return _totals.GetValueOrDefault(name); } }
    }

    public IReadOnlyDictionary<string, long> Snapshot()
    {
        lock (_totals)
        {
            return new Dictionary<string, long>(_totals);
        }
    }

    public void Dispose() => _listener.Dispose();
}
