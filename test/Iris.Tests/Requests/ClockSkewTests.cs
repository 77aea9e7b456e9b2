using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Requests;

/// <summary>Time crosses processes as time remaining: a member whose clocks disagree with the caller's serves it.</summary>
public sealed class ClockSkewTests
{
    /// <summary>A clock 5 s ahead, wall clock and monotonic timestamps alike.</summary>
    private sealed class AheadTimeProvider(TimeSpan ahead) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + ahead;

        public override long GetTimestamp() => System.GetTimestamp() + (long)(ahead.TotalSeconds * System.TimestampFrequency);
    }

    private sealed class Echo : IClusterHandler
    {
        public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task A_request_with_a_2_s_timeout_succeeds_against_a_member_whose_clock_is_5_s_ahead()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 47000 + (Random.Shared.Next(0, 100) * 16);
        using var caller = await StartSiloAsync(key, discovery, clock: null);
        using var member = await StartSiloAsync(key, discovery, new AheadTimeProvider(TimeSpan.FromSeconds(5)));
        var membership = caller.Services.GetRequiredService<IClusterMembershipService>();
        await Support.Eventually.HoldsAsync(() => membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) == 2, "two silos", TimeSpan.FromSeconds(60));

        var registration = await member.Services.GetRequiredService<IIrisClient>().RegisterAsync("skewed", new Echo());
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal([(byte)i], await caller.Services.GetRequiredService<IIrisClient>().RequestAsync("skewed", [(byte)i], TimeSpan.FromSeconds(2)));
            Assert.Equal([(byte)i], await caller.Services.GetRequiredService<IGrainFactory>().GetGrain<IClusterGrain>("skewed").Request([(byte)i], TimeSpan.FromSeconds(2)));
        }

        await registration.DisposeAsync();
        await member.StopAsync();
        await caller.StopAsync();
    }

    private static Task<IHost> StartSiloAsync(string key, int discovery, TimeProvider? clock) =>
        InProcessSilo.StartAsync(key, discovery, services =>
        {
            if (clock is not null)
            {
                services.AddSingleton(clock);
            }
        });
}
