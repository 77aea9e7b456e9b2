using System.Diagnostics.Metrics;

namespace Iris.Diagnostics;

/// <summary>Instruments of the Iris patterns, on the meter <c>Iris</c> (process totals; dashboards and
/// OpenTelemetry exporters read them).</summary>
internal static class IrisMetrics
{
    public const string MeterName = "Iris";

    public static readonly Meter Meter = new(MeterName, "1.0");

    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("iris.requests", "{request}", "Requests sent to clusters.");

    public static readonly Counter<long> Failures = Meter.CreateCounter<long>(
        "iris.request.failures", "{request}", "Requests that failed, by error type (no_members, timeout, remote, overloaded, other).");

    public static readonly Counter<long> Bytes = Meter.CreateCounter<long>("iris.bytes", "By", "Payload bytes of requests, replies, broadcasts and publications.");

    public static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>("iris.request.duration", "ms", "Time from sending a request to its reply or error.");

    public static readonly Counter<long> Broadcasts = Meter.CreateCounter<long>("iris.broadcasts", "{message}", "Broadcasts sent to clusters.");

    public static readonly Counter<long> Publications = Meter.CreateCounter<long>("iris.publications", "{message}", "Messages published on topics.");

    public static readonly Counter<long> HandlerFailures = Meter.CreateCounter<long>(
        "iris.handler.failures", "{message}", "Broadcasts and publications whose handler threw, by exception type.");

    private static long _members;

    static IrisMetrics() =>
        Meter.CreateObservableGauge("iris.members", () => Interlocked.Read(ref _members), "{member}", "Cluster members and topic subscribers hosted by this process.");

    public static void MembersChanged(int delta) => Interlocked.Add(ref _members, delta);

    public static string ErrorType(Exception error) => error switch
    {
        NoMembersException => "no_members",
        IrisTimeoutException => "timeout",
        RemoteException => "remote",
        IrisOverloadedException => "overloaded",
        _ => "other",
    };
}
