using System.Collections.Concurrent;

namespace Iris.Tests.Support;

/// <summary>
/// Fault injection in an Orleans client: the answer to a call of a given method for a given cluster is lost after the
/// call ran (the caller sees "silo unavailable", as when its gateway dies with the answer on it). Armed per cluster
/// name, so tests sharing a client do not disturb each other. Also counts the calls made, by method and cluster, and
/// can hold them before they leave until released.
/// </summary>
internal sealed class LostAnswers : IOutgoingGrainCallFilter
{
    private static readonly ConcurrentDictionary<(string Method, string Cluster), int> Armed = new();
    private static readonly ConcurrentDictionary<(string Method, string Cluster), int> Made = new();
    private static readonly ConcurrentDictionary<(string Method, string Cluster), Func<string, Exception>> Errors = new();
    private static readonly ConcurrentDictionary<(string Method, string Cluster), TaskCompletionSource> Held = new();
    private static readonly ConcurrentDictionary<(string Method, string Cluster), bool> Silent = new();
    private static readonly ConcurrentDictionary<(string Method, string Cluster), int> Dropped = new();

    /// <summary>Loses the answers of the next <paramref name="count"/> calls of <paramref name="method"/> for
    /// <paramref name="cluster"/>; the caller sees <paramref name="error"/> (default: "silo unavailable").</summary>
    public static void Arm(string method, string cluster, int count = 1, Func<string, Exception>? error = null)
    {
        Errors[(method, cluster)] = error ?? (what => new SiloUnavailableException(what));
        Silent[(method, cluster)] = false;
        Armed[(method, cluster)] = count;
    }

    /// <summary>Loses the answers of the next <paramref name="count"/> calls of <paramref name="method"/> for
    /// <paramref name="cluster"/> without an error, as a silo that dies with an answer on its way through it does: the
    /// caller hears nothing until Orleans' response timeout for the method (<see cref="Iris.Calls.CallPolicy.ReaskAfter"/>)
    /// ends the call with a <see cref="TimeoutException"/>.</summary>
    public static void ArmSilent(string method, string cluster, int count = 1)
    {
        Errors[(method, cluster)] = what => new TimeoutException(what);
        Silent[(method, cluster)] = true;
        Armed[(method, cluster)] = count;
    }

    /// <summary>Drops the next <paramref name="count"/> calls of <paramref name="method"/> for <paramref name="cluster"/>
    /// before they leave, without an error, as a silo that dies with them on their way through it does: the target
    /// never sees them, and the caller hears nothing until the response timeout (here
    /// <see cref="Iris.Calls.CallPolicy.ReaskAfter"/>) ends the call with a <see cref="TimeoutException"/>.</summary>
    public static void ArmDropped(string method, string cluster, int count = 1) => Dropped[(method, cluster)] = count;

    public static int Remaining(string method, string cluster) =>
        Armed.GetValueOrDefault((method, cluster)) + Dropped.GetValueOrDefault((method, cluster));

    /// <summary>Calls of <paramref name="method"/> for <paramref name="cluster"/> made so far, whatever their outcome.</summary>
    public static int Calls(string method, string cluster) => Made.GetValueOrDefault((method, cluster));

    /// <summary>Holds the calls of <paramref name="method"/> for <paramref name="cluster"/> made from now on (counted,
    /// not yet sent) until <see cref="Release"/>.</summary>
    public static void Hold(string method, string cluster) =>
        Held.TryAdd((method, cluster), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Sends the calls held by <see cref="Hold"/>, and those made from now on at once.</summary>
    public static void Release(string method, string cluster)
    {
        if (Held.TryRemove((method, cluster), out var held))
        {
            held.TrySetResult();
        }
    }

    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        var method = context.InterfaceMethod?.Name ?? string.Empty;
        foreach (var cluster in Names(context))
        {
            Made.AddOrUpdate((method, cluster), 1, (_, n) => n + 1);
        }

        if (!Held.IsEmpty)
        {
            foreach (var cluster in Names(context))
            {
                if (Held.TryGetValue((method, cluster), out var held))
                {
                    await held.Task;
                }
            }
        }

        if (!Dropped.IsEmpty)
        {
            foreach (var cluster in Names(context))
            {
                if (TakeOne(Dropped, (method, cluster)))
                {
                    await Task.Delay(Iris.Calls.CallPolicy.ReaskAfter);
                    throw new TimeoutException($"The call {method} for '{cluster}' was dropped on its way (fault injected by the test).");
                }
            }
        }

        await context.Invoke();
        foreach (var cluster in Names(context))
        {
            var key = (method, cluster);
            if (TakeOne(Armed, key))
            {
                if (Silent.GetValueOrDefault(key))
                {
                    await Task.Delay(Iris.Calls.CallPolicy.ReaskAfter);
                }

                throw Errors[key]($"The answer to {method} for '{cluster}' was lost (fault injected by the test).");
            }
        }
    }

    /// <summary>Takes one from the count armed for <paramref name="key"/>; false when none is left.</summary>
    private static bool TakeOne(ConcurrentDictionary<(string Method, string Cluster), int> counts, (string Method, string Cluster) key)
    {
        while (counts.TryGetValue(key, out var left) && left > 0)
        {
            if (counts.TryUpdate(key, left - 1, left))
            {
                return true;
            }
        }

        return false;
    }

    private static IEnumerable<string> Names(IOutgoingGrainCallContext context)
    {
        yield return context.TargetId.Key.ToString()!;
        for (var i = 0; i < context.Request.GetArgumentCount(); i++)
        {
            switch (context.Request.GetArgument(i))
            {
                case string argument:
                    yield return argument;
                    break;
                case Iris.Protocol.Audience audience:
                    yield return audience.Name;
                    break;
            }
        }
    }
}
