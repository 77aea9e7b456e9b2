using System.Diagnostics.Metrics;

namespace Iris.Overlay.Diagnostics;

/// <summary>
/// Instruments of the overlay, on the meter <c>Iris.Overlay</c>. Shared by every node in the process; a listener
/// (dotnet-counters, OpenTelemetry) sees the process totals.
/// </summary>
internal static class OverlayMetrics
{
    public const string MeterName = "Iris.Overlay";

    public static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Routed messages passed to a next hop.</summary>
    public static readonly Counter<long> MessagesRouted = Meter.CreateCounter<long>(
        "iris.overlay.messages.routed", "{message}", "Routed messages forwarded to a next hop.");

    /// <summary>Hops a routed message took to reach its root.</summary>
    public static readonly Histogram<int> Hops = Meter.CreateHistogram<int>(
        "iris.overlay.route.hops", "{hop}", "Hops taken by routed messages delivered on their root.");

    /// <summary>Routed messages given up (too many hops or attempts).</summary>
    public static readonly Counter<long> RoutesDropped = Meter.CreateCounter<long>(
        "iris.overlay.routes.dropped", "{message}", "Routed messages dropped after too many hops or failed attempts.");

    /// <summary>Repairs started: leaf-set or routing-row refills after a node died or left.</summary>
    public static readonly Counter<long> Repairs = Meter.CreateCounter<long>(
        "iris.overlay.repairs", "{repair}", "Leaf-set and routing-table repairs started after a node died or left.");

    /// <summary>Nodes declared dead by heartbeat silence or a missing hop acknowledgement.</summary>
    public static readonly Counter<long> FailuresDetected = Meter.CreateCounter<long>(
        "iris.overlay.failures.detected", "{node}", "Nodes declared dead after heartbeat silence or an unacknowledged hop.");

    /// <summary>Hops rerouted because the chosen next hop did not acknowledge.</summary>
    public static readonly Counter<long> Reroutes = Meter.CreateCounter<long>(
        "iris.overlay.reroutes", "{message}", "Routed messages sent again to another hop after a missing acknowledgement.");
}
