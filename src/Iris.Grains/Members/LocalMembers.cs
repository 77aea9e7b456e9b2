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
    private readonly RecentIds _seen = new();
    private readonly Lock _cpuLock = new();
    private TimeSpan _lastCpu = Environment.CpuUsage.TotalTime;
    private int _next;

    public IEnumerable<string> Clusters => _clusters.Where(c => c.Value.Length > 0).Select(c => c.Key);

    public IEnumerable<string> Topics => _topics.Where(t => t.Value.Length > 0).Select(t => t.Key);

    /// <summary>Whether this process has members of <paramref name="cluster"/>.</summary>
    public bool HasMembers(string cluster) => _clusters.TryGetValue(cluster, out var members) && members.Length > 0;

    /// <summary>Whether this process has subscribers of <paramref name="topic"/>.</summary>
    public bool HasSubscribers(string topic) => _topics.TryGetValue(topic, out var handlers) && handlers.Length > 0;

    /// <summary>
    /// Capacity this process offers a cluster, in requests per second, summed over its members (see
    /// <see cref="Member.Capacity"/>). Reported to the rendezvous with every renewal, so a member that slows down
    /// draws less within a few renewals.
    /// </summary>
    public double Capacity(string cluster) => _clusters.TryGetValue(cluster, out var members) ? members.Sum(m => m.Capacity) : 0;

    public Member Add(string cluster, IClusterHandler handler, MemberLimits limits)
    {
        var member = new Member(handler, limits);
        Diagnostics.IrisMetrics.MembersChanged("cluster", cluster, 1);
        _clusters.AddOrUpdate(cluster, [member], (_, members) => [.. members, member]);
        return member;
    }

    /// <summary>Removes a member, closing the tunnels it serves; returns whether the cluster has members left here.</summary>
    public bool Remove(string cluster, Member member)
    {
        Diagnostics.IrisMetrics.MembersChanged("cluster", cluster, -1);
        foreach (var tunnel in member.Tunnels.Values)
        {
            tunnel.End(TunnelCloseReason.MemberUnregistered, null, notifyPeer: true);
        }

        return _clusters.AddOrUpdate(cluster, [], (_, members) => [.. members.Where(m => m != member)]).Length > 0;
    }

    public void Subscribe(string topic, ITopicHandler handler)
    {
        Diagnostics.IrisMetrics.MembersChanged("topic", topic, 1);
        _topics.AddOrUpdate(topic, [handler], (_, handlers) => [.. handlers, handler]);
    }

    public bool Unsubscribe(string topic, ITopicHandler handler)
    {
        Diagnostics.IrisMetrics.MembersChanged("topic", topic, -1);
        return _topics.AddOrUpdate(topic, [], (_, handlers) => [.. handlers.Where(h => h != handler)]).Length > 0;
    }

    public async Task<byte[]> RequestAsync(string cluster, byte[] request, DateTime deadlineUtc)
    {
        var member = Pick(cluster) ?? throw new NoMembersException(cluster);
        return await member.RunAsync(cluster, request, deadlineUtc).ConfigureAwait(false);
    }

    /// <summary>The least busy member of <paramref name="cluster"/> here (requests running and tunnels served), ties
    /// broken round robin; null when there is none.</summary>
    public Member? Pick(string cluster)
    {
        if (!_clusters.TryGetValue(cluster, out var members) || members.Length == 0)
        {
            return null;
        }

        var start = Interlocked.Increment(ref _next);
        return Enumerable.Range(0, members.Length).Select(i => members[(start + i) % members.Length]).MinBy(m => m.Load)!;
    }

    /// <summary>Delivers a broadcast to each member here, unless message <paramref name="id"/> was delivered
    /// already. A handler's exception is the member's own affair: it is counted, not returned to the sender.</summary>
    public Task BroadcastAsync(string cluster, byte[] message, Guid id) =>
        _clusters.TryGetValue(cluster, out var members) && _seen.Add(id)
            ? Task.WhenAll(members.Select(m => DeliverAsync(m.Handler.HandleBroadcastAsync, message)))
            : Task.CompletedTask;

    /// <summary>Delivers a publication to each subscriber here, once per message <paramref name="id"/>.</summary>
    public Task PublishAsync(string topic, byte[] message, Guid id) =>
        _topics.TryGetValue(topic, out var handlers) && _seen.Add(id)
            ? Task.WhenAll(handlers.Select(h => DeliverAsync(h.HandlePublishAsync, message)))
            : Task.CompletedTask;

    private static async Task DeliverAsync(Func<byte[], CancellationToken, Task> handler, byte[] message)
    {
        try
        {
            await handler(message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Diagnostics.IrisMetrics.HandlerFailures.Add(1, new KeyValuePair<string, object?>("error", e.GetType().Name));
        }
    }

    /// <summary>
    /// Measures the process's CPU time since the last sample and charges it to the members in proportion to the
    /// time their handlers ran, so each member's capacity also reflects the CPU its requests cost (see
    /// <see cref="Member.Capacity"/>). Called with each renewal of the registrations.
    /// </summary>
    public void SampleCpu()
    {
        var cpu = Environment.CpuUsage.TotalTime;
        TimeSpan spent;
        lock (_cpuLock)
        {
            spent = cpu - _lastCpu;
            _lastCpu = cpu;
        }

        var all = _clusters.Values.SelectMany(m => m).ToArray();
        var windows = all.Select(m => m.TakeWindow()).ToArray();
        var busy = windows.Sum(w => w.BusySeconds);
        for (var i = 0; i < all.Length; i++)
        {
            if (busy > 0)
            {
                all[i].ChargeCpu(windows[i], spent.TotalSeconds * (windows[i].BusySeconds / busy));
            }
        }
    }

    /// <summary>One registered handler with its limits.</summary>
    internal sealed class Member(IClusterHandler handler, MemberLimits limits)
    {
        private readonly SemaphoreSlim _slots = new(limits.MaxConcurrentRequests, limits.MaxConcurrentRequests);
        private long _queuedBytes;
        private int _active;
        private double _serviceSeconds = 0.010;
        private double _cpuSeconds;
        private long _windowRequests;
        private long _windowBusyTicks;

        public IClusterHandler Handler { get; } = handler;

        public MemberLimits Limits { get; } = limits;

        public int Load => Volatile.Read(ref _active) + Tunnels.Count;

        /// <summary>The tunnels this member serves, closed when it leaves.</summary>
        public ConcurrentDictionary<Guid, Tunnels.TunnelEnd> Tunnels { get; } = new();

        /// <summary>
        /// Requests per second this member can complete, the lower of two bounds: its concurrent slots over the time
        /// its handler takes per request (a moving average, at least 1 ms; 10 ms until measured), and the machine's
        /// cores over the CPU time a request costs (requests handled per unit of CPU time, once measured). A handler
        /// that waits on I/O is bound by its slots; one that computes, by the CPU.
        /// </summary>
        public double Capacity
        {
            get
            {
                var bySlots = Limits.MaxConcurrentRequests / Math.Max(0.001, Volatile.Read(ref _serviceSeconds));
                var cpu = Volatile.Read(ref _cpuSeconds);
                return cpu > 0 ? Math.Min(bySlots, Environment.ProcessorCount / cpu) : bySlots;
            }
        }

        /// <summary>Requests completed and handler time spent since the last window, resetting both.</summary>
        internal (long Requests, double BusySeconds) TakeWindow() =>
            (Interlocked.Exchange(ref _windowRequests, 0), TimeSpan.FromTicks(Interlocked.Exchange(ref _windowBusyTicks, 0)).TotalSeconds);

        /// <summary>Folds the CPU time charged to a window's requests into the CPU cost of a request.</summary>
        internal void ChargeCpu((long Requests, double BusySeconds) window, double cpuSeconds)
        {
            // A handful of requests says little about their cost: wait for a window with enough of them.
            if (window.Requests >= 10)
            {
                var perRequest = Math.Max(1e-6, cpuSeconds / window.Requests);
                var known = Volatile.Read(ref _cpuSeconds);
                Volatile.Write(ref _cpuSeconds, known == 0 ? perRequest : (0.5 * known) + (0.5 * perRequest));
            }
        }

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
                    var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                    Volatile.Write(ref _serviceSeconds, (0.9 * Volatile.Read(ref _serviceSeconds)) + (0.1 * took.TotalSeconds));
                    Interlocked.Increment(ref _windowRequests);
                    Interlocked.Add(ref _windowBusyTicks, took.Ticks);
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

/// <summary>Message ids seen in the last minute or two: a generation of ids is dropped every minute.</summary>
internal sealed class RecentIds
{
    private static readonly TimeSpan Generation = TimeSpan.FromMinutes(1);
    private HashSet<Guid> _current = [];
    private HashSet<Guid> _previous = [];
    private readonly Lock _lock = new();
    private long _started = Environment.TickCount64;

    /// <summary>Remembers <paramref name="id"/>; returns whether it is new.</summary>
    public bool Add(Guid id)
    {
        lock (_lock)
        {
            if (Environment.TickCount64 - _started > Generation.TotalMilliseconds)
            {
                (_previous, _current) = (_current, _previous);
                _current.Clear();
                _started = Environment.TickCount64;
            }

            return !_previous.Contains(id) && _current.Add(id);
        }
    }

    public bool Contains(Guid id)
    {
        lock (_lock)
        {
            return _current.Contains(id) || _previous.Contains(id);
        }
    }
}
