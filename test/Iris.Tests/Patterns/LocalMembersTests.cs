using Iris.Members;

namespace Iris.Tests.Patterns;

public class LocalMembersTests
{
    private sealed class Timed(int milliseconds) : IClusterHandler
    {
        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            await Task.Delay(milliseconds, cancellationToken);
            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task Capacity_follows_the_measured_time_a_handler_takes()
    {
        var members = new LocalMembers();
        members.Add("slow", new Timed(40), new MemberLimits { MaxConcurrentRequests = 2 });
        members.Add("fast", new Timed(0), new MemberLimits { MaxConcurrentRequests = 2 });
        Assert.Equal(200, members.Capacity("slow"), 1);

        for (var i = 0; i < 40; i++)
        {
            await members.RequestAsync("slow", [1], DateTime.UtcNow.AddSeconds(5));
            await members.RequestAsync("fast", [1], DateTime.UtcNow.AddSeconds(5));
        }

        // 2 slots over about 40 ms per request: about 50 requests a second; the fast one is capped at 1 ms a request.
        Assert.InRange(members.Capacity("slow"), 25, 100);
        Assert.InRange(members.Capacity("fast"), 500, 2000);
        Assert.Equal(0, members.Capacity("unknown"));
    }

    private sealed class Spinning(int milliseconds) : IClusterHandler
    {
        public int Broadcasts;

        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            var until = Environment.TickCount64 + milliseconds;
            while (Environment.TickCount64 < until)
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
        var members = new LocalMembers();
        members.Add("cpu", new Spinning(10), new MemberLimits { MaxConcurrentRequests = 64 });
        members.SampleCpu();
        for (var i = 0; i < 30; i++)
        {
            await members.RequestAsync("cpu", [1], DateTime.UtcNow.AddSeconds(5));
        }

        // 64 slots over 10 ms would promise 6,400 requests a second; each costs about 10 ms of CPU, so the cores bound
        // it near 100 a second per core.
        Assert.True(members.Capacity("cpu") > 3000, $"capacity by slots alone {members.Capacity("cpu")}");
        members.SampleCpu();
        Assert.InRange(members.Capacity("cpu"), 10, 150 * Environment.ProcessorCount);
    }

    [Fact]
    public async Task A_broadcast_is_delivered_once_per_id_and_a_failing_handler_does_not_fail_the_sender()
    {
        var members = new LocalMembers();
        var handler = new Spinning(0);
        members.Add("news", handler, new MemberLimits());
        var id = Guid.NewGuid();
        await members.BroadcastAsync("news", [1], id);
        await members.BroadcastAsync("news", [1], id);
        await members.BroadcastAsync("news", [1], Guid.NewGuid());
        Assert.Equal(2, handler.Broadcasts);
    }
}
