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
}
