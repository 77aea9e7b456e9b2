using System.Collections.Concurrent;

namespace Iris.Chaos;

/// <summary>Broadcasts to cluster <c>chaos</c> at a steady rate, each with a unique id, recording which were accepted
/// (and should reach every member process once), which failed, and which got no answer within 7 s.</summary>
internal sealed class BroadcastLoad(IIrisClient iris, RunClock clock, int perSecond)
{
    private static readonly TimeSpan AnswerLimit = TimeSpan.FromSeconds(7);
    private long _sent;
    private long _unanswered;

    /// <summary>Ids of the broadcasts accepted, with the second (into the load) they were sent in.</summary>
    public ConcurrentDictionary<string, double> Accepted { get; } = new(StringComparer.Ordinal);

    /// <summary>What the unanswered broadcasts came to in the end, if anything came before the run ended.</summary>
    public Tally LateOutcomes { get; } = new();

    public Tally Failed { get; } = new();

    public long Sent => Interlocked.Read(ref _sent);

    public long Unanswered => Interlocked.Read(ref _unanswered);

    public async Task RunAsync(CancellationToken stop)
    {
        if (perSecond == 0)
        {
            return;
        }

        var inFlight = new List<Task>();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / perSecond));
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                inFlight.RemoveAll(t => t.IsCompleted);
                inFlight.Add(Task.Run(BroadcastAsync, CancellationToken.None));
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The run is over; the broadcasts under way finish below.
        }

        await Task.WhenAll(inFlight).ConfigureAwait(false);
    }

    private async Task BroadcastAsync()
    {
        var payload = Ids.NewPayload(out var id);
        var at = clock.Seconds;
        Interlocked.Increment(ref _sent);
        var call = iris.BroadcastAsync(MemberProgram.Cluster, payload, CancellationToken.None);
        try
        {
            await call.WaitAsync(AnswerLimit).ConfigureAwait(false);
            Accepted[id] = at;
        }
        catch (TimeoutException) when (!call.IsCompleted)
        {
            Interlocked.Increment(ref _unanswered);
            _ = call.ContinueWith(t => LateOutcomes.Add($"{at:F1}s: " + (t.IsCompletedSuccessfully ? "Accepted" : t.Exception?.InnerException?.GetType().Name ?? "Canceled")), TaskScheduler.Default);
        }
        catch (Exception e)
        {
            Failed.Add(e is IrisException ? e.GetType().Name : "untyped:" + e.GetType().FullName);
        }
    }
}
