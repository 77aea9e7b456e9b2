using Iris.Members;
using Iris.Protocol;
using Microsoft.Extensions.Time.Testing;

namespace Iris.Tests.Patterns;

public class LocalMembersTests
{
    private static MemberOptions Limits(int slots) => new() { Limits = new MemberLimits { MaxConcurrentRequests = slots } };

    /// <summary>A handler that takes its time on a fake clock.</summary>
    private sealed class Ticking(FakeTimeProvider time, int milliseconds) : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            time.Advance(TimeSpan.FromMilliseconds(milliseconds));
            return Task.FromResult(request);
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task Capacity_follows_the_measured_time_a_handler_takes()
    {
        // Measured on the process's clock (here a fake one), so a busy machine does not change what the test sees.
        var time = new FakeTimeProvider();
        var members = new LocalMembers(time);
        members.Add("slow", new Ticking(time, 40), Limits(2));
        members.Add("fast", new Ticking(time, 0), Limits(2));
        Assert.Equal(200, members.Capacity("slow"), 1);

        for (var i = 0; i < 40; i++)
        {
            await members.RequestAsync(Guid.NewGuid(), "slow", [1], TimeSpan.FromSeconds(5));
            await members.RequestAsync(Guid.NewGuid(), "fast", [1], TimeSpan.FromSeconds(5));
        }

        // 2 slots over 40 ms per request: 50 requests a second; the fast one is capped at 1 ms a request.
        Assert.Equal(50, members.Capacity("slow"), 3);
        Assert.Equal(2000, members.Capacity("fast"), 3);
        Assert.Equal(0, members.Capacity("unknown"));
    }

    /// <summary>A handler that computes until its thread has spent the given CPU time.</summary>
    private sealed class Spinning(int milliseconds) : IClusterHandler
    {
        public int Broadcasts;

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            var until = ThreadCpu.Now() + TimeSpan.FromMilliseconds(milliseconds);
            while (ThreadCpu.Now() < until)
            {
                Thread.SpinWait(100);
            }

            return Task.FromResult(request);
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Broadcasts);
            throw new InvalidOperationException("handler failed");
        }
    }

    [Fact]
    public async Task Capacity_of_a_handler_that_computes_is_bound_by_the_cpu_a_request_costs()
    {
        Assert.True(ThreadCpu.IsAvailable, "this platform tells no thread's CPU time");
        var members = new LocalMembers(TimeProvider.System);
        members.Add("cpu", new Spinning(10), Limits(64));
        for (var i = 0; i < 30; i++)
        {
            await members.RequestAsync(Guid.NewGuid(), "cpu", [1], TimeSpan.FromSeconds(5));
        }

        // 64 slots over at least 10 ms would promise up to 6,400 requests a second; each request costs 10 ms of CPU
        // (a little more: the loop checks the clock), so the cores bind it at 100 a second per core, however busy the
        // machine is (a busier machine stretches the 10 ms of CPU over more wall-clock time, not more CPU).
        var perCore = members.Capacity("cpu") / Environment.ProcessorCount;
        Assert.InRange(perCore, 80, 100.5);
    }

    private sealed class Waiting(int milliseconds) : IClusterHandler
    {
        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            await Task.Delay(milliseconds, cancellationToken);
            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task Capacity_of_a_handler_that_waits_is_not_lowered_by_cpu_the_process_spends_on_other_work()
    {
        // A thread computes beside the member the whole time (the silo routing other traffic, another member in the
        // same process). None of that CPU is the member's: charged to it, its capacity followed its own request rate
        // (a quarter of its slot bound here, 12 a second was seen with two such threads), and a balancer then kept
        // whatever split it had started with.
        var members = new LocalMembers(TimeProvider.System);
        members.Add("io", new Waiting(10), Limits(8));
        using var stop = new CancellationTokenSource();
        var burner = Task.Factory.StartNew(
            () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Thread.SpinWait(1000);
                }
            },
            TaskCreationOptions.LongRunning);
        var took = TimeSpan.Zero;
        try
        {
            for (var i = 0; i < 30; i++)
            {
                var started = TimeProvider.System.GetTimestamp();
                await members.RequestAsync(Guid.NewGuid(), "io", [1], TimeSpan.FromSeconds(5));
                took += TimeProvider.System.GetElapsedTime(started);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await burner;
        }

        // 8 slots over the time a request took (10 ms, more on a busy machine): the slots bind, not the CPU.
        var bySlots = 8 / (took.TotalSeconds / 30);
        Assert.True(members.Capacity("io") >= bySlots / 2, $"capacity {members.Capacity("io")}, by slots {bySlots}");
    }

    [Fact]
    public async Task A_broadcast_is_delivered_once_per_id_and_a_failing_handler_does_not_fail_the_sender()
    {
        var members = new LocalMembers(TimeProvider.System);
        var handler = new Spinning(0);
        members.Add("news", handler, new MemberOptions());
        var id = Guid.NewGuid();
        var news = Audience.Cluster("news");
        members.Deliver(news, [new Disseminated(id, [1])]);

        // A batch: the id seen before is dropped; the handler, which throws, still gets the two others in turn.
        members.Deliver(news, [new Disseminated(id, [1]), new Disseminated(Guid.NewGuid(), [1]), new Disseminated(Guid.NewGuid(), [1])]);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref handler.Broadcasts) < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        await Task.Delay(100);
        Assert.Equal(3, handler.Broadcasts);
    }

    /// <summary>A subscriber that queues what it gets, on the delivering thread.</summary>
    private sealed class Queueing : ITopicHandler, IQueueingHandler
    {
        public System.Collections.Concurrent.ConcurrentQueue<byte> Received { get; } = new();

        public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
        {
            Received.Enqueue(message[0]);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public void A_publication_sent_before_this_process_subscribed_is_not_delivered_when_its_copy_comes_back_after()
    {
        // Unsubscribe, publish 2, subscribe, publish 3: the rendezvous' copy of 2, coming back to this process after the
        // new subscription, belongs to a time when nobody here was subscribed (a relay client sees its own order).
        var members = new LocalMembers(TimeProvider.System);
        var topic = Audience.Topic("own");
        var two = new Disseminated(Guid.NewGuid(), [2]);
        var three = new Disseminated(Guid.NewGuid(), [3]);
        members.DeliverSent(topic, [two]);

        var subscriber = new Queueing();
        members.Subscribe("own", subscriber);
        members.DeliverSent(topic, [three]);
        members.Deliver(topic, [two]);
        members.Deliver(topic, [three]);

        Assert.Equal([3], subscriber.Received.ToArray());

        // A publication of another process, arriving for the first time, is delivered.
        members.Deliver(topic, [new Disseminated(Guid.NewGuid(), [4])]);
        Assert.Equal([3, 4], subscriber.Received.ToArray());
    }

    private sealed class Counting : IClusterHandler
    {
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Runs;

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            var run = Interlocked.Increment(ref Runs);
            await Release.Task;
            return [.. request, (byte)run];
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
    }

    [Fact]
    public async Task A_repeated_request_id_joins_the_run_in_flight_and_later_gets_its_reply_without_running_again()
    {
        var time = new FakeTimeProvider();
        var members = new LocalMembers(time);
        var handler = new Counting();
        members.Add("once", handler, new MemberOptions());
        var id = Guid.NewGuid();
        var first = members.RequestAsync(id, "once", [7], TimeSpan.FromSeconds(30));
        var repeat = members.RequestAsync(id, "once", [7], TimeSpan.FromSeconds(30));
        handler.Release.SetResult();
        Assert.Equal([7, 1], (await first).Data);
        Assert.Equal([7, 1], (await repeat).Data);

        time.Advance(RequestLedger.Generation / 2);
        Assert.Equal([7, 1], (await members.RequestAsync(id, "once", [7], TimeSpan.FromSeconds(30))).Data);
        time.Advance((RequestLedger.Generation / 2) - TimeSpan.FromSeconds(1));
        Assert.Equal([7, 1], (await members.RequestAsync(id, "once", [7], TimeSpan.FromSeconds(30))).Data);
        Assert.Equal(1, handler.Runs);

        // Kept at least one generation after it finished, longer than a caller's copies are apart; forgotten once a
        // generation has passed and a sweep is due.
        Assert.True(RequestLedger.Generation >= 2 * Iris.Calls.CallPolicy.ReaskAfter);
        time.Advance(RequestLedger.Generation);
        Assert.Equal(MemberReplyStatus.Replied, (await members.RequestAsync(Guid.NewGuid(), "once", [1], TimeSpan.FromSeconds(30))).Status);
        Assert.Equal(1, members.RememberedRequests);
    }

    [Fact]
    public async Task Finished_runs_are_forgotten_in_the_order_they_finished_each_a_generation_after_it()
    {
        var time = new FakeTimeProvider();
        var members = new LocalMembers(time);
        var handler = new Counting();
        handler.Release.SetResult();
        members.Add("echo", handler, new MemberOptions());
        var ids = new[] { Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid() };
        foreach (var id in ids)
        {
            await members.RequestAsync(id, "echo", [1], TimeSpan.FromSeconds(5));
            time.Advance(TimeSpan.FromSeconds(5));
        }

        // The runs finished at 0, 5 and 10 s; now it is 15 s. At 20 s the first is due (3 remembered with the new
        // one), at 25 s the second.
        time.Advance(TimeSpan.FromSeconds(5));
        await members.RequestAsync(Guid.NewGuid(), "echo", [1], TimeSpan.FromSeconds(5));
        Assert.Equal(3, members.RememberedRequests);
        time.Advance(TimeSpan.FromSeconds(5));
        await members.RequestAsync(Guid.NewGuid(), "echo", [1], TimeSpan.FromSeconds(5));
        Assert.Equal(3, members.RememberedRequests);

        // The third is still remembered: its copy gets the stored reply and does not run again.
        var runs = handler.Runs;
        Assert.Equal([1, 3], (await members.RequestAsync(ids[2], "echo", [1], TimeSpan.FromSeconds(5))).Data);
        Assert.Equal(runs, handler.Runs);
    }

    [Fact]
    public async Task A_run_that_finishes_just_before_its_generation_is_dropped_keeps_its_reply_a_generation_longer()
    {
        var time = new FakeTimeProvider();
        var members = new LocalMembers(time);
        var handler = new Counting();
        var other = new Counting();
        other.Release.SetResult();
        members.Add("long", handler, new MemberOptions());
        members.Add("other", other, new MemberOptions());
        var id = Guid.NewGuid();
        var first = members.RequestAsync(id, "long", [7], TimeSpan.FromMinutes(5));

        // Two rotations go by: the first while it runs, the second a second after it finished.
        time.Advance(RequestLedger.Generation + TimeSpan.FromSeconds(1));
        await members.RequestAsync(Guid.NewGuid(), "other", [1], TimeSpan.FromSeconds(5));
        time.Advance(RequestLedger.Generation - TimeSpan.FromSeconds(1));
        handler.Release.SetResult();
        Assert.Equal([7, 1], (await first).Data);
        time.Advance(TimeSpan.FromSeconds(1));
        await members.RequestAsync(Guid.NewGuid(), "other", [1], TimeSpan.FromSeconds(5));

        // A copy whose caller lost the reply arrives a little later: it gets the reply, it does not run again.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([7, 1], (await members.RequestAsync(id, "long", [7], TimeSpan.FromMinutes(5))).Data);
        Assert.Equal(1, handler.Runs);
    }

    [Fact]
    public async Task A_copy_that_joins_a_long_run_answers_that_it_still_runs_before_its_callers_response_timeout()
    {
        var time = new FakeTimeProvider();
        var members = new LocalMembers(time);
        var handler = new Counting();
        members.Add("long", handler, new MemberOptions());
        var id = Guid.NewGuid();
        var first = members.RequestAsync(id, "long", [7], TimeSpan.FromMinutes(5));
        var copy = members.RequestAsync(id, "long", [7], TimeSpan.FromMinutes(5));
        Assert.True(RequestLedger.JoinWait < Iris.Calls.CallPolicy.ReaskAfter);
        time.Advance(RequestLedger.JoinWait);
        Assert.Equal(MemberReplyStatus.Running, (await copy).Status);

        handler.Release.SetResult();
        Assert.Equal([7, 1], (await first).Data);
        Assert.Equal(1, handler.Runs);
    }

    [Fact]
    public async Task A_request_refused_before_it_started_is_not_remembered_so_a_repeat_may_run_it()
    {
        var members = new LocalMembers(TimeProvider.System);
        var id = Guid.NewGuid();
        Assert.Equal(MemberReplyStatus.NotHere, (await members.RequestAsync(id, "late", [1], TimeSpan.FromSeconds(5))).Status);
        var handler = new Counting();
        handler.Release.SetResult();
        members.Add("late", handler, new MemberOptions { Limits = new MemberLimits { MaxQueuedBytes = 4 } });
        Assert.Equal(MemberReplyStatus.Overloaded, (await members.RequestAsync(id, "late", new byte[8], TimeSpan.FromSeconds(5))).Status);
        Assert.Equal(MemberReplyStatus.Replied, (await members.RequestAsync(id, "late", [1], TimeSpan.FromSeconds(5))).Status);
        Assert.Equal(1, handler.Runs);
    }

    [Fact]
    public async Task Time_left_is_counted_on_the_members_own_clock_whatever_its_wall_clock_says()
    {
        // A member whose wall clock is far ahead runs a request it got with time left; the time counts from arrival.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow.AddHours(5));
        var members = new LocalMembers(time);
        var handler = new Counting();
        handler.Release.SetResult();
        members.Add("skewed", handler, new MemberOptions());
        Assert.Equal(MemberReplyStatus.Replied, (await members.RequestAsync(Guid.NewGuid(), "skewed", [1], TimeSpan.FromSeconds(2))).Status);
    }

    [Fact]
    public void A_leaving_member_is_chosen_only_when_no_other_member_is_left()
    {
        var members = new LocalMembers(TimeProvider.System);
        var leaving = members.Add("c", new Counting(), new MemberOptions());
        var staying = members.Add("c", new Counting(), new MemberOptions());
        leaving.Leaving = true;
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Same(staying, members.Pick("c")));
        Assert.True(members.Offers("c"));
        members.Remove("c", staying);
        Assert.Same(leaving, members.Pick("c"));
        Assert.False(members.Offers("c"));
    }
}
