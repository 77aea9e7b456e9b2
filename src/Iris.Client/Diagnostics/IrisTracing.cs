using System.Diagnostics;

namespace Iris.Diagnostics;

/// <summary>
/// Spans of the Iris patterns, on the activity source <c>Iris</c>: one per request sent (client) and handled (server),
/// per broadcast and publication sent (producer) and delivered to each process (consumer), and per tunnel offered
/// (client) and accepted (server). A request's and a tunnel's spans are parented across processes by Orleans' activity
/// propagation, where the hosts turn it on (<c>AddActivityPropagation</c> on the silo and client builders; Iris.Silo
/// does when it exports telemetry) and its sources <c>Microsoft.Orleans.Application</c> and
/// <c>Microsoft.Orleans.Runtime</c> are listened to as well. A broadcast or publication carries its sender's span with
/// every copy (<see cref="Protocol.Disseminated.TraceParent"/>), so each delivery is a child of the send however many
/// tree hops it took. Nothing is recorded, and no clock is read, while nobody listens. Work that outlives the call
/// that started it (a tunnel's pump and handler, a batch of broadcasts handed over together) starts with no current
/// span (<see cref="RunDetached"/>), so it is never parented under a span that has ended.
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

    /// <summary>Starts <paramref name="work"/> on the thread pool with no current span: it outlives the caller's.</summary>
    public static Task RunDetached(Func<Task> work) => Detached(() => Task.Run(work));

    /// <summary>Calls <paramref name="start"/> with no current span, and restores the caller's: for what starts work
    /// that goes on after the caller's span ends (a tunnel's handler).</summary>
    public static T Detached<T>(Func<T> start)
    {
        var current = Activity.Current;
        if (current is null)
        {
            return start();
        }

        Activity.Current = null;
        try
        {
            return start();
        }
        finally
        {
            Activity.Current = current;
        }
    }

    /// <summary>Ends <paramref name="activity"/> without touching the current span of the thread that ends it
    /// (<see cref="Activity.Stop"/> would make the span's parent current there).</summary>
    public static void Stop(Activity activity)
    {
        var current = Activity.Current;
        activity.Dispose();
        Activity.Current = current == activity ? activity.Parent : current;
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
