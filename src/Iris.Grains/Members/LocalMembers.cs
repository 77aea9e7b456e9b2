using System.Collections.Concurrent;

namespace Iris.Members;

/// <summary>
/// The members hosted by this silo, per cluster, and the subscribers, per topic. Applies each member's
/// <see cref="MemberLimits"/>: at most so many requests at once, at most so many bytes waiting; a request whose
/// deadline passes while it waits is dropped, not run.
/// </summary>
internal sealed class LocalMembers
{
    private readonly ConcurrentDictionary<string, Member[]> _clusters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ITopicHandler[]> _topics = new(StringComparer.Ordinal);
    private int _next;

    public IEnumerable<string> Clusters => _clusters.Where(c => c.Value.Length > 0).Select(c => c.Key);

    public IEnumerable<string> Topics => _topics.Where(t => t.Value.Length > 0).Select(t => t.Key);

    /// <summary>
    /// Capacity this process offers a cluster, in requests per second: for each member, its concurrent slots over the
    /// time its handler takes per request (a moving average, at least 1 ms; 10 ms until measured). Reported to the
    /// rendezvous with every renewal, so a member that slows down draws less within a few renewals.
    /// </summary>
    public double Capacity(string cluster) => _clusters.TryGetValue(cluster, out var members) ? members.Sum(m => m.Capacity) : 0;

    public Member Add(string cluster, IClusterHandler handler, MemberLimits limits)
    {
        var member = new Member(handler, limits);
        Diagnostics.IrisMetrics.MembersChanged(1);
        _clusters.AddOrUpdate(cluster, [member], (_, members) => [.. members, member]);
        return member;
    }

    /// <summary>Removes a member; returns whether the cluster has members left here.</summary>
    public bool Remove(string cluster, Member member)
    {
        Diagnostics.IrisMetrics.MembersChanged(-1);
        return _clusters.AddOrUpdate(cluster, [], (_, members) => [.. members.Where(m => m != member)]).Length > 0;
    }

    public void Subscribe(string topic, ITopicHandler handler)
    {
        Diagnostics.IrisMetrics.MembersChanged(1);
        _topics.AddOrUpdate(topic, [handler], (_, handlers) => [.. handlers, handler]);
    }

    public bool Unsubscribe(string topic, ITopicHandler handler)
    {
        Diagnostics.IrisMetrics.MembersChanged(-1);
        return _topics.AddOrUpdate(topic, [], (_, handlers) => [.. handlers.Where(h => h != handler)]).Length > 0;
    }

    public async Task<byte[]> RequestAsync(string cluster, byte[] request, DateTime deadlineUtc)
    {
        if (!_clusters.TryGetValue(cluster, out var members) || members.Length == 0)
        {
            throw new NoMembersException(cluster);
        }

        // The least busy member, ties broken round robin.
        var start = Interlocked.Increment(ref _next);
        var member = Enumerable.Range(0, members.Length).Select(i => members[(start + i) % members.Length]).MinBy(m => m.Load)!;
        return await member.RunAsync(cluster, request, deadlineUtc).ConfigureAwait(false);
    }

    public Task BroadcastAsync(string cluster, byte[] message) =>
        _clusters.TryGetValue(cluster, out var members)
            ? Task.WhenAll(members.Select(m => m.Handler.HandleBroadcastAsync(message, CancellationToken.None)))
            : Task.CompletedTask;

    public Task PublishAsync(string topic, byte[] message) =>
        _topics.TryGetValue(topic, out var handlers)
            ? Task.WhenAll(handlers.Select(h => h.HandlePublishAsync(message, CancellationToken.None)))
            : Task.CompletedTask;

    /// <summary>One registered handler with its limits.</summary>
    internal sealed class Member(IClusterHandler handler, MemberLimits limits)
    {
        private readonly SemaphoreSlim _slots = new(limits.MaxConcurrentRequests, limits.MaxConcurrentRequests);
        private long _queuedBytes;
        private int _active;
        private double _serviceSeconds = 0.010;

        public IClusterHandler Handler { get; } = handler;

        public MemberLimits Limits { get; } = limits;

        public int Load => Volatile.Read(ref _active);

        /// <summary>Requests per second this member can complete: slots over service time.</summary>
        public double Capacity => Limits.MaxConcurrentRequests / Math.Max(0.001, Volatile.Read(ref _serviceSeconds));

        public async Task<byte[]> RunAsync(string cluster, byte[] request, DateTime deadlineUtc)
        {
            if (Interlocked.Add(ref _queuedBytes, request.Length) > Limits.MaxQueuedBytes)
            {
                Interlocked.Add(ref _queuedBytes, -request.Length);
                throw new IrisOverloadedException(cluster, $"the member already holds {Limits.MaxQueuedBytes} bytes of requests");
            }

            Interlocked.Increment(ref _active);
            try
            {
                var wait = deadlineUtc - DateTime.UtcNow;
                if (wait <= TimeSpan.Zero || !await _slots.WaitAsync(wait).ConfigureAwait(false))
                {
                    // Its caller has given up: running it now would only waste the member's time.
                    throw new IrisTimeoutException(cluster, wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
                }

                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    using var timeout = new CancellationTokenSource(deadlineUtc - DateTime.UtcNow is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
                    var reply = await Handler.HandleRequestAsync(request, timeout.Token).ConfigureAwait(false);
                    var took = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
                    Volatile.Write(ref _serviceSeconds, (0.9 * Volatile.Read(ref _serviceSeconds)) + (0.1 * took));
                    return reply;
                }
                catch (Exception e) when (e is not IrisException)
                {
                    throw new RemoteException(cluster, e.Message);
                }
                finally
                {
                    _slots.Release();
                }
            }
            finally
            {
                Interlocked.Decrement(ref _active);
                Interlocked.Add(ref _queuedBytes, -request.Length);
            }
        }
    }
}
