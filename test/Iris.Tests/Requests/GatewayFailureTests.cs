using Iris.Hosting;
using Iris.Tests.Support;
using Iris.Tests.TestClusters;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Iris.Tests.Requests;

/// <summary>Processes that lose their gateway: a request whose caller loses it while the member runs it runs once, and a
/// broadcast to a member that is reconnecting through another gateway reaches it once.</summary>
public sealed class GatewayFailureTests
{
    private sealed class Slow : IClusterHandler
    {
        public readonly TaskCompletionSource Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Runs;

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Runs);
            Started.TrySetResult();
            await Task.Delay(TimeSpan.FromSeconds(3), CancellationToken.None);
            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task A_request_whose_gateway_is_killed_while_the_member_runs_it_runs_once_and_the_caller_gets_its_reply()
    {
        await using var cluster = await IrisTestCluster.DeployAsync(3, tcp: true);
        var memberSilo = cluster.Silos[1];
        var gateway = cluster.Silos[2];
        var member = new Slow();
        await using var registration = await memberSilo.Iris().RegisterAsync("once", member);

        // The caller knows one gateway, not the member's silo: the call goes through the gateway. Once the gateway is
        // dead, the gateway list offers the member's silo instead, as the beacons would.
        using var client = await StartClientAsync(cluster, gateway);
        var options = client.Services.GetRequiredService<IOptions<IrisClientOptions>>().Value;
        var gatewayAddress = GatewayOf(gateway);
        var request = client.Services.GetRequiredService<IIrisClient>().RequestAsync("once", [1, 2, 3], TimeSpan.FromSeconds(30));
        await member.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        options.Gateways.Add(GatewayOf(memberSilo));
        await cluster.KillSiloAsync(gateway);
        options.Gateways.Remove(gatewayAddress);

        Assert.Equal([1, 2, 3], await request.WaitAsync(TimeSpan.FromSeconds(40)));
        Assert.Equal(1, member.Runs);
        await client.StopAsync();
    }

    /// <summary>A member that holds each request until the test lets it go.</summary>
    private sealed class Held : IClusterHandler
    {
        public readonly TaskCompletionSource Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Runs;

        public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Runs);
            Started.TrySetResult();
            await Release.Task;
            return request;
        }

        public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task A_request_whose_callers_gateway_dies_is_asked_again_at_once_not_after_the_response_timeout()
    {
        // Orleans does not fail a call already sent through a gateway whose connection drops: its answer can never
        // come. The caller's time (4.5 s) is shorter than the response timeout after which Iris would ask again anyway
        // (5 s): only asking again when the gateway's connection is lost gets the answer in time.
        Assert.True(TimeSpan.FromSeconds(4.5) < Iris.Calls.CallPolicy.ReaskAfter);
        await using var cluster = await IrisTestCluster.DeployAsync(3, tcp: true);
        var memberSilo = cluster.Silos[1];
        var gateway = cluster.Silos[2];
        var member = new Held();
        await using var registration = await memberSilo.Iris().RegisterAsync("asked-again", member);
        using var client = await StartClientAsync(cluster, gateway);
        var options = client.Services.GetRequiredService<IOptions<IrisClientOptions>>().Value;
        var gatewayAddress = GatewayOf(gateway);

        // Through the gateway, which then dies while the member holds the request; the member's silo is the gateway
        // left. The member finishes once the gateway is gone: its answer has only the lost connection to go back by.
        var request = client.Services.GetRequiredService<IIrisClient>().RequestAsync("asked-again", [4, 5], TimeSpan.FromSeconds(4.5));
        await member.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        options.Gateways.Add(GatewayOf(memberSilo));
        await cluster.KillSiloAsync(gateway);
        options.Gateways.Remove(gatewayAddress);
        member.Release.TrySetResult();

        Assert.Equal([4, 5], await request.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, member.Runs);
        Assert.True(client.Services.GetRequiredService<Iris.Calls.GatewayLoss>().Losses >= 1);
        await client.StopAsync();
    }

    [Fact]
    public async Task A_broadcast_accepted_while_a_member_client_is_between_gateways_reaches_it_once()
    {
        await using var cluster = await IrisTestCluster.DeployAsync(3, tcp: true);
        var gateway = cluster.Silos[2];
        var member = new BroadcastCountingEcho();
        using var client = await StartClientAsync(cluster, gateway);
        var options = client.Services.GetRequiredService<IOptions<IrisClientOptions>>().Value;
        await using var registration = await client.Services.GetRequiredService<IIrisClient>().RegisterAsync("between", member);
        await cluster.Silos[0].Iris().BroadcastAsync("between", [0]);
        await Eventually.SettlesAtAsync(() => member.Broadcasts, 1, "broadcast before the kill");

        // The member's only gateway dies; it finds the next one after the gateway list refreshes. Broadcasts sent
        // meanwhile find it unreachable at first (Orleans: client not available).
        var gatewayAddress = GatewayOf(gateway);
        await cluster.KillSiloAsync(gateway);
        options.Gateways.Add(GatewayOf(cluster.Silos[1]));
        options.Gateways.Remove(gatewayAddress);
        for (var i = 1; i <= 5; i++)
        {
            await cluster.Silos[0].Iris().BroadcastAsync("between", [(byte)i]).WaitAsync(TimeSpan.FromSeconds(30));
        }

        await Eventually.SettlesAtAsync(() => member.Broadcasts, 6, "broadcasts accepted while the member was between gateways", TimeSpan.FromSeconds(40));
    }

    private static string GatewayOf(Orleans.TestingHost.SiloHandle silo) =>
        silo.Services().GetRequiredService<ILocalSiloDetails>().GatewayAddress!.Endpoint.ToString();

    private static async Task<IHost> StartClientAsync(Orleans.TestingHost.TestCluster cluster, Orleans.TestingHost.SiloHandle gateway)
    {
        var configuration = cluster.Silos[0].Services().GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        var client = Host.CreateDefaultBuilder()
            .UseOrleansClient(orleans =>
            {
                orleans.UseIris(options =>
                {
                    options.NetworkKey = configuration["Iris:Network:Key"];
                    options.Gateways.Add(GatewayOf(gateway));
                });
                orleans.Configure<GatewayOptions>(gateways => gateways.GatewayListRefreshPeriod = TimeSpan.FromMilliseconds(500));
            })
            .Build();
        await client.StartAsync();
        return client;
    }
}
