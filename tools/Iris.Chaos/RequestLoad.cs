using System.Collections.Concurrent;

namespace Iris.Chaos;

/// <summary>Callers sending requests to cluster <c>chaos</c> one after another, each with a unique id, recording each
/// request's outcome: succeeded (the echo came back), failed with a typed Iris error, failed otherwise, or unanswered
/// (neither reply nor error within the timeout plus 2 s).</summary>
internal sealed class RequestLoad(IIrisClient iris, RunClock clock, TimeSpan timeout, int seconds)
{
    private const int MaxSamples = 8;
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);
    private readonly int[] _succeededPerSecond = new int[seconds + 60];
    private readonly int[] _failedPerSecond = new int[seconds + 60];
    private long _requests;
    private long _succeeded;
    private long _unanswered;
    private long _wrongReplies;

    public Tally FailedTyped { get; } = new();

    public Tally FailedUntyped { get; } = new();

    /// <summary>What the unanswered requests came to in the end, if anything came before the run ended.</summary>
    public Tally LateOutcomes { get; } = new();

    public ConcurrentQueue<string> SucceededIds { get; } = new();

    /// <summary>The first failures, with when they came (seconds into the load) and what they said.</summary>
    public ConcurrentQueue<string> FailureSamples { get; } = new();

    public long Requests => Interlocked.Read(ref _requests);

    public long Succeeded => Interlocked.Read(ref _succeeded);

    public long Unanswered => Interlocked.Read(ref _unanswered);

    public long WrongReplies => Interlocked.Read(ref _wrongReplies);

    /// <summary>Successful requests per second of the run, by the second they completed in.</summary>
    public int[] SucceededPerSecond() => _succeededPerSecond.Take(seconds).ToArray();

    /// <summary>Failed and unanswered requests per second of the run, by the second they were given up in.</summary>
    public int[] FailedPerSecond() => _failedPerSecond.Take(seconds).ToArray();

    public Task RunAsync(int callers, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(() => CallAsync(stop), CancellationToken.None)));

    private async Task CallAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var payload = Ids.NewPayload(out var id);
            Interlocked.Increment(ref _requests);

            // The run's stop does not cancel a request in flight: every request started gets its outcome.
            var call = iris.RequestAsync(MemberProgram.Cluster, payload, timeout, CancellationToken.None);
            try
            {
                var reply = await call.WaitAsync(timeout + Grace, CancellationToken.None).ConfigureAwait(false);
                if (reply.AsSpan().SequenceEqual(payload))
                {
                    Interlocked.Increment(ref _succeeded);
                    SucceededIds.Enqueue(id);
                    var second = clock.Second;
                    if (second < _succeededPerSecond.Length)
                    {
                        Interlocked.Increment(ref _succeededPerSecond[second]);
                    }
                }
                else
                {
                    Interlocked.Increment(ref _wrongReplies);
                }
            }
            catch (TimeoutException) when (!call.IsCompleted)
            {
                Interlocked.Increment(ref _unanswered);
                Failure(new TimeoutException($"request {id}: no reply and no error within {timeout + Grace}"));
                _ = call.ContinueWith(t => LateOutcomes.Add(t.IsCompletedSuccessfully ? "Reply" : t.Exception?.InnerException?.GetType().Name ?? "Canceled"), TaskScheduler.Default);
            }
            catch (IrisException e)
            {
                FailedTyped.Add(e.GetType().Name);
                Failure(e);
            }
            catch (Exception e)
            {
                FailedUntyped.Add(e.GetType().FullName ?? e.GetType().Name);
                Failure(e);
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private void Failure(Exception e)
    {
        var second = clock.Second;
        if (second < _failedPerSecond.Length)
        {
            Interlocked.Increment(ref _failedPerSecond[second]);
        }

        if (FailureSamples.Count < MaxSamples)
        {
            FailureSamples.Enqueue($"{clock.Seconds:F1}s {e.GetType().Name}: {e.Message}");
        }
    }
}
