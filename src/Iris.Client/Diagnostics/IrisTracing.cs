using System.Diagnostics;

namespace Iris.Diagnostics;

/// <summary>
/// Spans of the Iris patterns, on the activity source <c>Iris</c>: one per request sent (client) and handled (server),
/// per broadcast and publication sent (producer) and delivered to each process (consumer), and per tunnel offered
/// (client) and accepted (server). A request's and a tunnel's spans are parented across processes by Orleans' activity
/// propagation (on in every Iris silo and client; its sources <c>Microsoft.Orleans.Application</c> and
/// <c>Microsoft.Orleans.Runtime</c> must be listened to as well). A broadcast or publication carries its sender's span
/// with every copy (<see cref="Protocol.Disseminated.TraceParent"/>), so each delivery is a child of the send however
/// many tree hops it took. Nothing is recorded, and no clock is read, while nobody listens.
/// </summary>
internal static class IrisTracing
{
    public const string SourceName = "Iris";

    public static readonly ActivitySource Source = new(SourceName, "1.0");

    /// <summary>A span of an Iris operation on <paramref name="name"/>, or null while nobody listens.</summary>
    public static Activity? Start(string operation, string name, ActivityKind kind, ActivityContext parent = default)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity($"{operation} {name}", kind, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "iris");
            activity.SetTag("messaging.operation.name", operation);
            activity.SetTag("messaging.destination.name", name);
        }

        return activity;
    }

    /// <summary>A span started by <see cref="Start"/> without making it the caller's current one: for an operation
    /// that goes on after the method that started it returns.</summary>
    public static Activity? StartDetached(string operation, string name, ActivityKind kind)
    {
        var previous = Activity.Current;
        var activity = Start(operation, name, kind);
        if (activity is not null)
        {
            Activity.Current = previous;
        }

        return activity;
    }

    /// <summary>Marks <paramref name="activity"/> failed with <paramref name="error"/>'s type and message.</summary>
    public static void Failed(Activity? activity, Exception error)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag("error.type", IrisMetrics.ErrorType(error) is "other" ? error.GetType().Name : IrisMetrics.ErrorType(error));
    }

    /// <summary>The parent a delivered message's span takes: the sender's span it carries, when it carries one.</summary>
    public static ActivityContext ParentOf(string? traceParent) =>
        traceParent is not null && ActivityContext.TryParse(traceParent, null, isRemote: true, out var context) ? context : default;
}
