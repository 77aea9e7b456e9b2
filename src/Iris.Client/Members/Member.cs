using Iris.Calls;
using Iris.Protocol;
using Iris.Tunnels;

namespace Iris.Members;

/// <summary>One registered handler of a cluster in this process, with its limits and its measured capacity.</summary>
internal sealed class Member(IClusterHandler handler, MemberOptions options)
{
    /// <summary>Requests whose measurements are averaged evenly before the moving average takes over.</summary>
    private const int FirstMeasured = 10;

    /// <summary>After the first <see cref="FirstMeasured"/>, one request in this many has its CPU measured.</summary>
    private const int CpuSampling = 64;

    /// <summary>The longest a refusal tells callers to pass this member over.</summary>
    private static readonly TimeSpan LongestRetryAfter = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _slots = new(options.Limits.MaxConcurrentRequests, options.Limits.MaxConcurrentRequests);
    private long _queuedBytes;
    private int _active;
    private double _serviceSeconds = 0.010;
    private long _measured;
    private double _cpuSeconds;
    private long _cpuMeasured;
    private long _cpuTurn;
    private volatile bool _leaving;

    public IClusterHandler Handler { get; } = handler;

    public MemberLimits Limits => options.Limits;

    public bool Idempotent => options.Idempotent;

    public int Load => Volatile.Read(ref _active) + Tunnels.Count;

    /// <summary>The member is leaving its cluster: it is no longer offered to other processes and is chosen here only
    /// when no other member is, but it serves what reaches it until it is removed.</summary>
    public bool Leaving
    {
        get => _leaving;
        set => _leaving = value;
    }

    /// <summary>The tunnels this member serves, closed when it leaves.</summary>
    public TunnelSet Tunnels { get; } = new();

    /// <summary>
    /// Requests per second this member can complete, the lower of two bounds: its concurrent slots over the time
    /// its handler takes per request (the mean of the first ten, then a moving average, at least 1 ms; 10 ms until
    /// measured), and the machine's cores over the CPU time a request costs (averaged the same way, once measured; after
    /// the first ten, one request in 64 is measured: reading a thread's CPU clock is a system call, some microseconds on a
    /// virtual machine).
    /// A handler that waits on I/O is bound by its slots; one that computes, by the CPU. The CPU a request costs is
    /// the CPU its handler's thread spends until the handler returns its task (<see cref="ThreadCpu"/>): the work
    /// the request itself does, never the process's other work (a silo routing other traffic, other members), which,
    /// charged to the member, made its capacity follow its own request rate. Work a handler does after its first
    /// await is not seen there; under load it shows in the time the handler takes, waiting for a core.
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

    /// <summary>
    /// Admits the request or refuses it before it starts (<see cref="MemberReplyStatus.Overloaded"/> when its bytes
    /// would pass the queue limit, saying how long the member expects to stay full: the time it takes on average to
    /// finish one request, one over its capacity, at most a second; zero for a request larger than the limit itself,
    /// which no wait would make fit), waits for a slot within the caller's budget (<see cref="MemberReplyStatus.Expired"/>
    /// when it runs out first: its caller has given up), then runs the handler with a token cancelled when the budget
    /// ends, both on this process's clock. A request waiting for a slot is queued, not refused: only the queued bytes
    /// make a member overloaded.
    /// </summary>
    public async Task<MemberReply> RunAsync(byte[] request, CallBudget budget)
    {
        if (Interlocked.Add(ref _queuedBytes, request.Length) > Limits.MaxQueuedBytes)
        {
            Interlocked.Add(ref _queuedBytes, -request.Length);
            var retryAfter = request.Length > Limits.MaxQueuedBytes
                ? TimeSpan.Zero
                : TimeSpan.FromSeconds(Math.Min(LongestRetryAfter.TotalSeconds, 1 / Capacity));
            return MemberReply.Refused(MemberReplyStatus.Overloaded, $"the member already holds {Limits.MaxQueuedBytes} bytes of requests", retryAfter);
        }

        Interlocked.Increment(ref _active);
        using var timeout = new CancellationTokenSource(budget.Remaining, budget.Time);
        try
        {
            try
            {
                await _slots.WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return MemberReply.Refused(MemberReplyStatus.Expired);
            }

            var started = budget.Time.GetTimestamp();
            try
            {
                // The thread's CPU clock is a system call each time it is read: it is read for the first requests, then
                // for one request in CpuSampling. The average it feeds moves as slowly as the service time's.
                var sampleCpu = ThreadCpu.IsAvailable && (Volatile.Read(ref _cpuMeasured) < FirstMeasured || Interlocked.Increment(ref _cpuTurn) % CpuSampling == 0);
                var cpuStarted = sampleCpu ? ThreadCpu.Now() : default;
                var handling = Handler is ITimedClusterHandler timed
                    ? timed.HandleRequestAsync(request, budget.Remaining, timeout.Token)
                    : Handler.HandleRequestAsync(request, timeout.Token);
                var cpu = sampleCpu ? ThreadCpu.Now() - cpuStarted : default;
                var reply = await handling.ConfigureAwait(false);
                var took = budget.Time.GetElapsedTime(started);
                // The mean of the first ten, then a moving average: the 10 ms guess is gone with the first measurement,
                // so a member asked less often is not judged longer by the guess than one asked more.
                var weight = Weight(Interlocked.Increment(ref _measured));
                Volatile.Write(ref _serviceSeconds, ((1 - weight) * Volatile.Read(ref _serviceSeconds)) + (weight * took.TotalSeconds));
                if (sampleCpu)
                {
                    var known = Volatile.Read(ref _cpuSeconds);
                    var perRequest = Math.Max(1e-6, cpu.TotalSeconds);
                    var cpuWeight = Weight(Interlocked.Increment(ref _cpuMeasured));
                    Volatile.Write(ref _cpuSeconds, known == 0 ? perRequest : ((1 - cpuWeight) * known) + (cpuWeight * perRequest));
                }

                return new MemberReply(MemberReplyStatus.Replied, reply, null);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                // The handler gave up when the caller's time ran out: the caller hears a timeout, not a fault.
                return MemberReply.Refused(MemberReplyStatus.GaveUp, "the handler did not finish within the caller's time");
            }
            catch (MemberUnavailableException e)
            {
                return MemberReply.Refused(MemberReplyStatus.NotHere, e.Message);
            }
            catch (Exception e)
            {
                return new MemberReply(MemberReplyStatus.Failed, null, e.Message);
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

    /// <summary>The weight of the <paramref name="count"/>th measurement: the mean of the first ten, then a moving
    /// average.</summary>
    private static double Weight(long count) => Math.Max(1.0 / FirstMeasured, 1.0 / count);
}
