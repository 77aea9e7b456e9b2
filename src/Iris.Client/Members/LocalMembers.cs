using System.Collections.Concurrent;
using System.Diagnostics;
using Iris.Calls;
using Iris.Diagnostics;
using Iris.Dissemination;
using Iris.Protocol;

namespace Iris.Members;

/// <summary>
/// The members hosted by this process, per cluster, and the subscribers, per topic. Runs requests on them at most once
/// per id (<see cref="RequestLedger"/>), within each member's <see cref="MemberLimits"/>, and hands broadcasts and
/// publications to them once per message id without making the sender wait for the handlers.
/// </summary>
internal sealed class LocalMembers(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Member[]> _clusters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ITopicHandler[]> _topics = new(StringComparer.Ordinal);
    private readonly RecentIds _delivered = new(time);
    private readonly LastIds _sentUnheard = new(SentIdsKept);
    private readonly RequestLedger _ledger = new(time);
    private int _next;

    public IEnumerable<string> Clusters => _clusters.Where(c => c.Value.Length > 0).Select(c => c.Key);

    public IEnumerable<string> Topics => _topics.Where(t => t.Value.Length > 0).Select(t => t.Key);

    /// <summary>The clusters with members here (with the capacity they offer) and the topics with subscribers here.</summary>
    public IEnumerable<(AudienceKind Kind, string Name, int Count, double Capacity)> Served()
    {
        foreach (var (name, members) in _clusters)
        {
            if (members.Length > 0)
            {
                yield return (AudienceKind.Cluster, name, members.Length, Capacity(name));
            }
        }

        foreach (var (name, handlers) in _topics)
        {
            if (handlers.Length > 0)
            {
                yield return (AudienceKind.Topic, name, handlers.Length, 0);
            }
        }
    }

    /// <summary>Requests started here and still remembered (running, or finished less than two minutes ago).</summary>
    public int RememberedRequests => _ledger.Count;

    /// <summary>Whether this process has members of <paramref name="cluster"/>.</summary>
    public bool HasMembers(string cluster) => _clusters.TryGetValue(cluster, out var members) && members.Length > 0;

    /// <summary>Whether this process has members of the cluster or subscribers of the topic.</summary>
    public bool Has(Audience audience) => audience.Kind == AudienceKind.Cluster
        ? HasMembers(audience.Name)
        : _topics.TryGetValue(audience.Name, out var handlers) && handlers.Length > 0;

    /// <summary>
    /// Capacity this process offers a cluster, in requests per second, summed over its members that are not leaving
    /// (see <see cref="Member.Capacity"/>). Reported with every reply to the process that sent the request, and to the
    /// rendezvous with every renewal, so a member that slows down draws less from its callers at once and from every
    /// other process within a renewal.
    /// </summary>
    public double Capacity(string cluster)
    {
        var capacity = 0.0;
        foreach (var member in _clusters.GetValueOrDefault(cluster) ?? [])
        {
            if (!member.Leaving)
            {
                capacity += member.Capacity;
            }
        }

        return capacity;
    }

    /// <summary>Whether this process still offers <paramref name="cluster"/> to others: it has members not leaving.</summary>
    public bool Offers(string cluster) => _clusters.TryGetValue(cluster, out var members) && members.Any(m => !m.Leaving);

    /// <summary>Whether every member of <paramref name="cluster"/> here registered as idempotent.</summary>
    public bool Idempotent(string cluster) => _clusters.TryGetValue(cluster, out var members) && members.Length > 0 && members.All(m => m.Idempotent);

    public Member Add(string cluster, IClusterHandler handler, MemberOptions options)
    {
        var member = new Member(handler, options);
        IrisMetrics.MembersChanged("cluster", cluster, 1);
        _clusters.AddOrUpdate(cluster, [member], (_, members) => [.. members, member]);
        return member;
    }

    /// <summary>Removes a member, closing the tunnels it serves; returns whether the cluster has members left here.</summary>
    public bool Remove(string cluster, Member member)
    {
        IrisMetrics.MembersChanged("cluster", cluster, -1);
        var left = _clusters.AddOrUpdate(cluster, [], (_, members) => [.. members.Where(m => m != member)]).Length > 0;
        member.Tunnels.EndAll(TunnelCloseReason.MemberUnregistered);
        return left;
    }

    public void Subscribe(string topic, ITopicHandler handler)
    {
        IrisMetrics.MembersChanged("topic", topic, 1);
        _topics.AddOrUpdate(topic, [handler], (_, handlers) => [.. handlers, handler]);
    }

    public bool Unsubscribe(string topic, ITopicHandler handler)
    {
        IrisMetrics.MembersChanged("topic", topic, -1);
        return _topics.AddOrUpdate(topic, [], (_, handlers) => [.. handlers.Where(h => h != handler)]).Length > 0;
    }

    /// <summary>
    /// Runs request <paramref name="id"/> on a member of <paramref name="cluster"/> here, at most once: a repeat joins
    /// the first run or gets its reply. With no member here the answer is <see cref="MemberReplyStatus.NotHere"/> (not
    /// started: the caller may try another member). <paramref name="remaining"/> is the caller's time left, counted
    /// from now on this process's clock.
    /// </summary>
    public Task<MemberReply> RequestAsync(Guid id, string cluster, byte[] request, TimeSpan remaining)
    {
        var budget = CallBudget.Start(time, remaining);
        return _ledger.RunOnce(id, () => Pick(cluster) is { } member
            ? Run(member)
            : Task.FromResult(MemberReply.Refused(MemberReplyStatus.NotHere)));

        // The request's one run here, in its span when someone listens: the handler runs with the span as its current
        // activity, so what it calls is parented under it. A repeat of the id that finds it running or done gets none.
        Task<MemberReply> Run(Member member)
        {
            IrisMetrics.RequestsHandled.Add(1);
            var previous = Activity.Current;
            var activity = IrisTracing.Start("handle", cluster, ActivityKind.Server);
            if (activity is null)
            {
                return member.RunAsync(request, budget);
            }

            activity.SetTag("messaging.message.id", id);
            Task<MemberReply> run;
            try
            {
                run = member.RunAsync(request, budget);
            }
            finally
            {
                Activity.Current = previous;
            }

            _ = run.ContinueWith(
                static (done, state) =>
                {
                    var span = (Activity)state!;
                    if (done.IsCanceled)
                    {
                        span.SetStatus(ActivityStatusCode.Error, "cancelled");
                    }
                    else if (done.IsFaulted)
                    {
                        span.SetStatus(ActivityStatusCode.Error, done.Exception.GetBaseException().Message);
                    }
                    else if (done.Result.Status != MemberReplyStatus.Replied)
                    {
                        span.SetStatus(ActivityStatusCode.Error, done.Result.Error ?? done.Result.Status.ToString());
                    }

                    IrisTracing.Stop(span);
                },
                activity,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            return run;
        }
    }

    /// <summary>The least busy member of <paramref name="cluster"/> here (requests running and tunnels served), members
    /// that are leaving only when no other is left, ties broken round robin; null when there is none.</summary>
    public Member? Pick(string cluster)
    {
        if (!_clusters.TryGetValue(cluster, out var members) || members.Length == 0)
        {
            return null;
        }

        var start = Interlocked.Increment(ref _next);
        Member? best = null;
        for (var i = 0; i < members.Length; i++)
        {
            var member = members[(int)((uint)(start + i) % members.Length)];
            if (best is null || (member.Leaving, member.Load).CompareTo((best.Leaving, best.Load)) < 0)
            {
                best = member;
            }
        }

        return best;
    }

    /// <summary>
    /// Hands messages this process is sending to its own members or subscribers, as they are sent. With none here now,
    /// their ids are kept (the last <see cref="SentIdsKept"/>): a member or subscriber added here before the
    /// rendezvous' copy of such a message comes back must not get it, since the message was sent before it came.
    /// </summary>
    public void DeliverSent(Audience audience, Disseminated[] messages)
    {
        if (!Has(audience))
        {
            _sentUnheard.Add(messages);
            return;
        }

        Deliver(audience, messages);
    }

    /// <summary>How many ids of messages sent with no member or subscriber here are kept.</summary>
    public const int SentIdsKept = 65536;

    /// <summary>
    /// Hands broadcasts or publications to each member or subscriber here, each message unless its id was handed over
    /// already. Returns at once: handlers run on the thread pool, one task per handler for the messages given together,
    /// in their order, so a slow handler holds up neither the sender nor the dissemination (an
    /// <see cref="IQueueingHandler"/>, which only queues, is called here instead). A handler's exception is the member's
    /// own affair: it is counted, not returned.
    /// </summary>
    public void Deliver(Audience audience, Disseminated[] messages)
    {
        if (!Has(audience))
        {
            return;
        }

        var fresh = _delivered.Fresh(_sentUnheard.IsEmpty ? messages : [.. messages.Where(m => !_sentUnheard.Contains(m.Id))]);
        if (fresh.Length == 0)
        {
            return;
        }

        if (audience.Kind == AudienceKind.Cluster)
        {
            var members = _clusters.GetValueOrDefault(audience.Name) ?? [];
            IrisMetrics.Deliveries.Add(fresh.Length * members.Length, IrisMetrics.BroadcastKind);
            foreach (var member in members)
            {
                Start(member.Handler, member.Handler.HandleBroadcastAsync, audience, fresh);
            }
        }
        else
        {
            var handlers = _topics.GetValueOrDefault(audience.Name) ?? [];
            IrisMetrics.Deliveries.Add(fresh.Length * handlers.Length, IrisMetrics.PublicationKind);
            foreach (var handler in handlers)
            {
                Start(handler, handler.HandlePublishAsync, audience, fresh);
            }
        }
    }

    private static void Start(object owner, Func<byte[], CancellationToken, Task> handler, Audience audience, Disseminated[] messages)
    {
        if (owner is IQueueingHandler)
        {
            // On the delivering thread: each span ends with the caller's current span current again.
            var current = Activity.Current;
            foreach (var message in messages)
            {
                var activity = StartDelivery(audience, message);
                try
                {
                    _ = Count(handler(message.Body, CancellationToken.None));
                }
                catch (Exception e)
                {
                    Failed(e);
                    IrisTracing.Failed(activity, e);
                }
                finally
                {
                    if (activity is not null)
                    {
                        activity.Dispose();
                        Activity.Current = current;
                    }
                }
            }

            return;
        }

        _ = Task.Run(async () =>
        {
            foreach (var message in messages)
            {
                using var activity = StartDelivery(audience, message);
                try
                {
                    await handler(message.Body, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Failed(e);
                    IrisTracing.Failed(activity, e);
                }
            }
        });
    }

    /// <summary>The span of one message's delivery to one handler, a child of its sender's span when it carries one.</summary>
    private static Activity? StartDelivery(Audience audience, Disseminated message)
    {
        if (!IrisTracing.Source.HasListeners())
        {
            return null;
        }

        var activity = IrisTracing.Start("deliver", audience.Name, ActivityKind.Consumer, IrisTracing.ParentOf(message.TraceParent));
        activity?.SetTag("messaging.message.id", message.Id);
        return activity;
    }

    /// <summary>Counts the failure of a handler's task, should it fail.</summary>
    private static async Task Count(Task handling)
    {
        try
        {
            await handling.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Failed(e);
        }
    }

    private static void Failed(Exception e) => IrisMetrics.HandlerFailures.Add(1, new KeyValuePair<string, object?>("error", e.GetType().Name));
}
