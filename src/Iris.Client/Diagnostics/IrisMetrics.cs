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
        "iris.request.failures", "{request}", "Requests that failed, by error type (no_members, timeout, remote, overloaded, outcome_unknown, other).");

    public static readonly Counter<long> Bytes = Meter.CreateCounter<long>("iris.bytes", "By", "Payload bytes of requests, replies, broadcasts and publications.");

    public static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>("iris.request.duration", "ms", "Time from sending a request to its reply or error.");

    public static readonly Histogram<double> HandOverDuration = Meter.CreateHistogram<double>(
        "iris.handover.duration", "ms", "Time from sending a broadcast or publication to its rendezvous taking it (the sender's task completing), by kind (broadcast, publication).");

    public static readonly Counter<long> TunnelOpens = Meter.CreateCounter<long>("iris.tunnel.opens", "{tunnel}", "Tunnels opened by this process (offered to a cluster), successful or not.");

    public static readonly Histogram<double> TunnelOpenDuration = Meter.CreateHistogram<double>(
        "iris.tunnel.open.duration", "ms", "Time from opening a tunnel to a member accepting it, or to the error.");

    public static readonly Counter<long> RequestsHandled = Meter.CreateCounter<long>(
        "iris.requests.handled", "{request}", "Requests run by members in this process (each request id once, however often it was sent).");

    public static readonly Counter<long> Deliveries = Meter.CreateCounter<long>(
        "iris.deliveries", "{message}", "Broadcasts and publications handed to the members and subscribers in this process (one per message and handler), by kind (broadcast, publication).");

    public static readonly Counter<long> Broadcasts = Meter.CreateCounter<long>("iris.broadcasts", "{message}", "Broadcasts sent to clusters.");

    public static readonly Counter<long> Publications = Meter.CreateCounter<long>("iris.publications", "{message}", "Messages published on topics.");

    public static readonly Counter<long> HandlerFailures = Meter.CreateCounter<long>(
        "iris.handler.failures", "{message}", "Broadcasts and publications whose handler threw, by exception type.");

    public static readonly Counter<long> TunnelMessages = Meter.CreateCounter<long>(
        "iris.tunnel.messages", "{message}", "Tunnel messages sent (accepted in the window) and received (taken by the application), by direction.");

    public static readonly Counter<long> TunnelBytes = Meter.CreateCounter<long>("iris.tunnel.bytes", "By", "Tunnel payload bytes, by direction (sent, received).");

    public static readonly Counter<long> TunnelCreditStalls = Meter.CreateCounter<long>(
        "iris.tunnel.credit_stalls", "{send}", "Tunnel sends that had to wait because the receiver's window was full.");

    public static readonly Counter<long> Repeats = Meter.CreateCounter<long>(
        "iris.call.repeats", "{call}", "Calls made again with the same id after contact was lost (a request, a tunnel open, a broadcast or publication handed over).");

    public static readonly Counter<long> RequestCalls = Meter.CreateCounter<long>(
        "iris.request.calls", "{call}",
        "Calls of requests to member processes, by route: here (a member in the calling process, no message), direct (an Orleans client to the member's silo over that silo's gateway, one hop), grain (to the member host through Orleans' own routing: from a silo one hop, from a client through whichever gateway Orleans picks).");

    public static readonly KeyValuePair<string, object?> RouteHere = new("route", "here");

    public static readonly KeyValuePair<string, object?> RouteDirect = new("route", "direct");

    public static readonly KeyValuePair<string, object?> RouteGrain = new("route", "grain");

    public static readonly KeyValuePair<string, object?> RequestDirection = new("direction", "request");

    public static readonly KeyValuePair<string, object?> ReplyDirection = new("direction", "reply");

    public static readonly KeyValuePair<string, object?> BroadcastDirection = new("direction", "broadcast");

    public static readonly KeyValuePair<string, object?> PublicationDirection = new("direction", "publication");

    public static readonly KeyValuePair<string, object?> BroadcastKind = new("kind", "broadcast");

    public static readonly KeyValuePair<string, object?> PublicationKind = new("kind", "publication");

    public static readonly KeyValuePair<string, object?>[] Sent = [new("direction", "sent")];

    public static readonly KeyValuePair<string, object?>[] Received = [new("direction", "received")];

    private static long _tunnels;

    static IrisMetrics()
    {
        Meter.CreateObservableGauge("iris.tunnels.open", () => Interlocked.Read(ref _tunnels), "{tunnel}", "Tunnel ends open in this process.");
    }

    public static readonly UpDownCounter<long> Members = Meter.CreateUpDownCounter<long>(
        "iris.members", "{member}", "Cluster members and topic subscribers hosted by this process, by kind (cluster, topic) and name.");

    public static void MembersChanged(string kind, string name, int delta) =>
        Members.Add(delta, new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("name", name));

    public static void TunnelsChanged(int delta) => Interlocked.Add(ref _tunnels, delta);

    public static string ErrorType(Exception error) => error switch
    {
        NoMembersException => "no_members",
        IrisTimeoutException => "timeout",
        RemoteException => "remote",
        IrisOverloadedException => "overloaded",
        IrisOutcomeUnknownException => "outcome_unknown",
        _ => "other",
    };
}
