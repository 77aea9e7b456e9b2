using System.Collections.Concurrent;
using System.Diagnostics;
using Iris.Balancing;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Protocol;

namespace Iris.Dissemination;

/// <summary>
/// The first hop of a broadcast or publication, from any process: it gives the message its id, once, and hands it to
/// one of the name's rendezvous grains, which accepts it and returns before any handler runs. The members and
/// subscribers in the sending process get it at once, as it is sent (not by way of the rendezvous, whose copy for this
/// process is then dropped as seen): a service that broadcasts to its own cluster, or a relay client to another client
/// of the same silo, does not wait for a round trip through the network. Messages to one name are
/// handed over together when they come faster than the hand-overs: at most <see cref="HandOversInFlight"/> calls per
/// name are in flight, and the messages that arrive meanwhile go in the next call (up to <see cref="MaxBatch"/>
/// messages or <see cref="MaxBatchBytes"/> bytes), and down the tree together from there; a lone message goes at once,
/// alone. A call whose answer was lost is made again with the same ids (to the next split's rendezvous if the first
/// one is moving), and one unanswered after a second is followed by a copy to the next split, so no member gets a
/// message twice and none waits for Orleans to declare a dead rendezvous' silo dead: member processes deliver an id
/// once.
/// </summary>
internal sealed class DisseminationSender(MemberDirectory directory, IGrainFactory grains, CallPolicy policy, LocalDelivery deliverHere)
{
    /// <summary>How long a sender keeps trying to hand a message over before it gives up. Messages handed over together
    /// share the time of the oldest.</summary>
    public static readonly TimeSpan HandOverTime = TimeSpan.FromSeconds(30);

    /// <summary>Hand-over calls in flight per name from this process.</summary>
    public const int HandOversInFlight = 2;

    /// <summary>The most messages handed over in one call.</summary>
    public const int MaxBatch = 256;

    /// <summary>The most bytes of messages handed over in one call (a larger message goes alone).</summary>
    public const int MaxBatchBytes = 1024 * 1024;

    private readonly ConcurrentDictionary<Audience, Outbox> _outboxes = new();

    public Task SendAsync(Audience audience, byte[] message, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(audience.Name);
        ArgumentNullException.ThrowIfNull(message);
        cancellationToken.ThrowIfCancellationRequested();
        (audience.Kind == AudienceKind.Cluster ? IrisMetrics.Broadcasts : IrisMetrics.Publications).Add(1);
        IrisMetrics.Bytes.Add(message.Length, audience.Kind == AudienceKind.Cluster ? IrisMetrics.BroadcastDirection : IrisMetrics.PublicationDirection);
        var activity = IrisTracing.StartDetached(audience.Kind == AudienceKind.Cluster ? "broadcast" : "publish", audience.Name, ActivityKind.Producer);
        var id = CallIds.Next();
        activity?.SetTag("messaging.message.id", id);
        var pending = new Pending(new Disseminated(id, message) { TraceParent = activity?.Id }, policy.Start(HandOverTime), cancellationToken)
        {
            Started = IrisMetrics.HandOverDuration.Enabled ? Stopwatch.GetTimestamp() : 0,
            Activity = activity,
            Kind = audience.Kind == AudienceKind.Cluster ? IrisMetrics.BroadcastKind : IrisMetrics.PublicationKind,
        };

        // This process's own members and subscribers first: cancelling later stops only the hand-over to the others.
        deliverHere(audience, [pending.Message]);
        var outbox = _outboxes.GetOrAdd(audience, static a => new Outbox(a));
        bool start;
        lock (outbox)
        {
            outbox.Queue.Enqueue(pending);
            start = outbox.InFlight < HandOversInFlight;
            if (start)
            {
                outbox.InFlight++;
            }
        }

        if (start)
        {
            // From the thread pool, not the caller's context: a hand-over carries other callers' messages too, and its
            // answer must not depend on the activation that happened to start it.
            // Under no span either: the hand-over carries the messages of every sender meanwhile.
            _ = IrisTracing.RunDetached(() => HandOverAsync(outbox));
        }

        return cancellationToken.CanBeCanceled ? pending.Done.Task.WaitAsync(cancellationToken) : pending.Done.Task;
    }

    /// <summary>Hands over what the outbox holds, one call after another, until it is empty.</summary>
    private async Task HandOverAsync(Outbox outbox)
    {
        while (true)
        {
            var batch = new List<Pending>();
            lock (outbox)
            {
                var bytes = 0L;
                while (batch.Count < MaxBatch && outbox.Queue.TryPeek(out var next)
                       && (batch.Count == 0 || bytes + next.Message.Body.Length <= MaxBatchBytes))
                {
                    outbox.Queue.Dequeue();
                    if (next.CancellationToken.IsCancellationRequested)
                    {
                        // Its sender stopped waiting before it was handed over: it is not sent.
                        next.Complete(new OperationCanceledException(next.CancellationToken));
                        continue;
                    }

                    batch.Add(next);
                    bytes += next.Message.Body.Length;
                }

                if (batch.Count == 0)
                {
                    // An idle name's outbox is dropped; a sender that still holds it starts a hand-over of its own from it
                    // (none is in flight), so nothing put there is left behind.
                    if (--outbox.InFlight == 0)
                    {
                        _outboxes.TryRemove(new KeyValuePair<Audience, Outbox>(outbox.Audience, outbox));
                    }

                    return;
                }
            }

            try
            {
                await HandOverAsync(outbox.Audience, batch).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // It completes every message itself; should it ever throw, the messages fail and the outbox moves on
                // rather than holding its turn for good.
                foreach (var pending in batch)
                {
                    pending.Complete(e);
                }
            }
        }
    }

    /// <summary>One call with <paramref name="batch"/>, repeated while unanswered within the time of its oldest
    /// message; completes each message's task. Never throws.</summary>
    private async Task HandOverAsync(Audience audience, List<Pending> batch)
    {
        var messages = new Disseminated[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            messages[i] = batch[i].Message;
        }

        var budget = batch[0].Budget;
        var keys = directory.KeysOf(audience);
        Exception? failure = null;
        for (var attempt = 1; failure is null; attempt++)
        {
            var first = Array.IndexOf(keys, directory.NextKey(audience));

            // Cancelled once this attempt is over, so that no copy to a further split follows a hand-over already
            // answered (or given up).
            using var settled = new CancellationTokenSource();
            try
            {
                // In a client, a lost gateway connection ends the wait at once, as for requests: an answer through it
                // never comes. Read before the call, so that a loss while it is made is not missed.
                var contactLost = policy.ContactLost;
                await policy.WithinAsync(ToSplits(first, 0, settled.Token, contactLost), budget, CancellationToken.None, contactLost).ConfigureAwait(false);
                foreach (var pending in batch)
                {
                    pending.Complete(null);
                }

                return;
            }
            catch (TimeoutException) when (budget.IsExpired)
            {
                failure = CallPolicy.Timeout(audience.Name, budget);
            }
            catch (Exception e) when (CallPolicy.Classify(e) != CallFailure.Answered)
            {
                // Past the hand-over time, a rendezvous that stayed unreachable is a timeout, never Orleans' own error.
                if (budget.IsExpired)
                {
                    failure = CallPolicy.Timeout(audience.Name, budget);
                    break;
                }

                IrisMetrics.Repeats.Add(1);
                await policy.PauseAsync(attempt, budget, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                settled.Cancel();
            }
        }

        foreach (var pending in batch)
        {
            pending.Complete(failure);
        }

        // The call to split (first + copy) % Splits; when it has no answer after a second (CallPolicy.HedgeAfter), a copy to the
        // next split, and so on, each split once, each copy after one second more than the one before (at about 1, 3
        // and 6 s): a rendezvous' silo that died with the call on its way fails nothing until Orleans gives up on it, 5
        // to 13 s later, and the next split's rendezvous may be on the same silo; a hand-over that is only slow (a
        // rendezvous activating, a silo overloaded) makes few copies; a call that fails is followed by the next copy at
        // once (CallPolicy.HedgedToAnotherAsync). None once the hand-over is settled. Every split lists every member,
        // and member processes deliver an id once. The first split that accepts answers the sender; a failure of one
        // waits for the others.
        Task ToSplits(int first, int copy, CancellationToken settled, CancellationToken contactLost)
        {
            var call = grains.GetGrain<IRendezvousGrain>(keys[(first + copy) % keys.Length]).Disseminate(audience, messages);
            return copy + 1 >= keys.Length
                ? call
                : policy.HedgedToAnotherAsync(
                    call, () => ToSplits(first, copy + 1, settled, contactLost), (copy + 1) * CallPolicy.HedgeAfter, new HedgeWhile(budget, settled, contactLost));
        }
    }

    /// <summary>A message waiting to be handed over, and its sender's task.</summary>
    private sealed class Pending(Disseminated message, CallBudget budget, CancellationToken cancellationToken)
    {
        public Disseminated Message { get; } = message;

        public CallBudget Budget { get; } = budget;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>When it was sent, while the hand-over time is measured; 0 otherwise.</summary>
        public long Started { get; init; }

        /// <summary>The send's span, ended once the message is handed over or has failed.</summary>
        public Activity? Activity { get; init; }

        /// <summary>Broadcast or publication, for the hand-over time.</summary>
        public KeyValuePair<string, object?> Kind { get; init; }

        /// <summary>Completes the sender's task: handed over (no <paramref name="failure"/>), cancelled or failed.</summary>
        public void Complete(Exception? failure)
        {
            if (failure is null)
            {
                Done.TrySetResult();
                if (Started != 0)
                {
                    IrisMetrics.HandOverDuration.Record(Stopwatch.GetElapsedTime(Started).TotalMilliseconds, Kind);
                }
            }
            else if (failure is OperationCanceledException cancelled)
            {
                Done.TrySetCanceled(cancelled.CancellationToken);
            }
            else
            {
                Done.TrySetException(failure);
            }

            if (Activity is { } activity)
            {
                if (failure is not null)
                {
                    IrisTracing.Failed(activity, failure);
                }

                IrisTracing.Stop(activity);
            }
        }
    }

    /// <summary>The messages of one name waiting to be handed over, and the hand-overs in flight.</summary>
    private sealed class Outbox(Audience audience)
    {
        public Audience Audience { get; } = audience;

        public Queue<Pending> Queue { get; } = new();

        public int InFlight { get; set; }
    }
}

/// <summary>Hands messages to the members and subscribers of this process (each id once).</summary>
internal delegate void LocalDelivery(Audience audience, Disseminated[] messages);
