using System.Collections.Concurrent;
using System.Diagnostics;

namespace Iris.Chaos;

/// <summary>
/// Requests to one overloaded cluster at a fixed offered rate, whatever becomes of earlier ones (an open loop: callers
/// that do not slow down when the cluster does), each with a unique id and the run's timeout. Every outcome is counted:
/// succeeded, refused with <see cref="IrisOverloadedException"/>, <see cref="IrisTimeoutException"/>, another typed
/// Iris error, an untyped error, or unanswered (neither reply nor error within the timeout plus 2 s). The ids of the
/// requests refused as overloaded are written to a file, so the runner can check that none of them ran.
/// </summary>
internal sealed class OverloadLoad(IIrisClient iris, OverloadCluster cluster, double rate, TimeSpan timeout, RunClock clock, int seconds, ExecutionFile refused)
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(20);
    private readonly int[] _succeededPerSecond = new int[seconds];
    private readonly int[] _refusedPerSecond = new int[seconds];
    private readonly ConcurrentBag<double> _succeededMs = [];
    private readonly ConcurrentBag<double> _overloadedMs = [];
    private readonly ConcurrentBag<double> _timedOutMs = [];
    private readonly List<Task> _pending = [];

    // IrisOverloadedException and IrisTimeoutException, what an overloaded cluster may answer; then everything else.
    private readonly Tally _overloaded = new();
    private readonly Tally _otherTyped = new();
    private readonly Tally _untyped = new();
    private readonly Tally _lateOutcomes = new();
    private long _sent;
    private long _requests;
    private long _succeeded;
    private long _unanswered;
    private long _wrongReplies;

    /// <summary>Sends the requests of every load at its offered rate until <paramref name="stop"/>, then waits for
    /// every request sent to end. One timer paces them all: each tick costs the process a wake-up, which on a busy
    /// machine is not free.</summary>
    public static async Task RunAsync(IReadOnlyList<OverloadLoad> loads, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(Tick);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                foreach (var load in loads)
                {
                    load.SendDue();
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The overload is over; the requests sent get their outcomes below.
        }

        await Task.WhenAll(loads.SelectMany(l => l._pending)).ConfigureAwait(false);
    }

    /// <summary>Sends whatever is due by now, so a late tick does not lower the rate offered.</summary>
    private void SendDue()
    {
        var due = (long)(clock.Seconds * rate);
        _pending.RemoveAll(t => t.IsCompleted);
        for (; _sent < due; _sent++)
        {
            _pending.Add(RequestAsync());
        }
    }

    public OverloadClusterResult Result() => new()
    {
        Cluster = cluster.Name,
        HandlerMs = cluster.HandlerTime.TotalMilliseconds,
        OfferedPerSecond = Math.Round(rate, 1),
        Requests = Interlocked.Read(ref _requests),
        Succeeded = Interlocked.Read(ref _succeeded),
        OverloadedTyped = _overloaded.Snapshot(),
        OtherTyped = _otherTyped.Snapshot(),
        Untyped = _untyped.Snapshot(),
        Unanswered = Interlocked.Read(ref _unanswered),
        WrongReplies = Interlocked.Read(ref _wrongReplies),
        UnansweredLateOutcomes = _lateOutcomes.Snapshot(),
        SucceededPerSecond = [.. _succeededPerSecond],
        RefusedPerSecond = [.. _refusedPerSecond],
        SucceededMs = LatencySummary.Of(_succeededMs),
        OverloadedMs = LatencySummary.Of(_overloadedMs),
        TimedOutMs = LatencySummary.Of(_timedOutMs),
    };

    private async Task RequestAsync()
    {
        // The request starts on the thread pool, not on the pacing loop: its first steps run before its first await.
        await Task.Yield();
        var payload = Ids.NewPayload(out _);
        Interlocked.Increment(ref _requests);
        var began = Stopwatch.GetTimestamp();
        var call = iris.RequestAsync(cluster.Name, payload, timeout, CancellationToken.None);
        try
        {
            var reply = await call.WaitAsync(timeout + Grace, CancellationToken.None).ConfigureAwait(false);
            if (reply.AsSpan().SequenceEqual(payload))
            {
                Interlocked.Increment(ref _succeeded);
                _succeededMs.Add(Stopwatch.GetElapsedTime(began).TotalMilliseconds);
                Count(_succeededPerSecond);
            }
            else
            {
                Interlocked.Increment(ref _wrongReplies);
            }
        }
        catch (TimeoutException) when (!call.IsCompleted)
        {
            Interlocked.Increment(ref _unanswered);
            _ = call.ContinueWith(t => _lateOutcomes.Add(t.IsCompletedSuccessfully ? "Reply" : t.Exception?.InnerException?.GetType().Name ?? "Canceled"), TaskScheduler.Default);
        }
        catch (IrisOverloadedException e)
        {
            _overloaded.Add(e.GetType().Name);
            _overloadedMs.Add(Stopwatch.GetElapsedTime(began).TotalMilliseconds);
            refused.Append(ExecutionFile.Overloaded, payload, durable: false);
            Count(_refusedPerSecond);
        }
        catch (IrisTimeoutException e)
        {
            _overloaded.Add(e.GetType().Name);
            _timedOutMs.Add(Stopwatch.GetElapsedTime(began).TotalMilliseconds);
            Count(_refusedPerSecond);
        }
        catch (IrisException e)
        {
            _otherTyped.Add(e.GetType().Name);
        }
        catch (Exception e)
        {
            _untyped.Add(e.GetType().FullName ?? e.GetType().Name);
        }
    }

    private void Count(int[] perSecond)
    {
        var second = clock.Second;
        if (second < perSecond.Length)
        {
            Interlocked.Increment(ref perSecond[second]);
        }
    }
}
