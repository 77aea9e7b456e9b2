using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Iris.Hosting;

/// <summary>Logs where the silo listens once it is active, every change in the number of active silos of its
/// Orleans cluster, and when it stops.</summary>
internal sealed partial class SiloEndpointLogger(ILocalSiloDetails silo, IClusterMembershipService membership, ILogger<SiloEndpointLogger> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _watch = Task.CompletedTask;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(
            nameof(SiloEndpointLogger),
            ServiceLifecycleStage.Active,
            _ =>
            {
                LogListening(logger, silo.Name, silo.SiloAddress.Endpoint.ToString(), silo.GatewayAddress?.Endpoint.ToString() ?? "(none)", silo.ClusterId);
                _watch = Task.Run(WatchMembershipAsync);
                return Task.CompletedTask;
            },
            async _ =>
            {
                LogStopping(logger, silo.Name);
                await _stopping.CancelAsync().ConfigureAwait(false);
                await _watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            });

    private async Task WatchMembershipAsync()
    {
        var last = -1;
        await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(_stopping.Token).ConfigureAwait(false))
        {
            var active = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.Endpoint.ToString()).Order().ToList();
            if (active.Count != last)
            {
                last = active.Count;
                LogMembers(logger, silo.ClusterId, active.Count, string.Join(", ", active));
            }
        }
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Iris silo {Name} listening: silo-to-silo on {SiloEndpoint}, clients on {GatewayEndpoint}, cluster '{ClusterId}'")]
    private static partial void LogListening(ILogger logger, string name, string siloEndpoint, string gatewayEndpoint, string clusterId);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Iris silo {Name} stopping")]
    private static partial void LogStopping(ILogger logger, string name);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Orleans cluster '{ClusterId}' has {Count} active silos: {Silos}")]
    private static partial void LogMembers(ILogger logger, string clusterId, int count, string silos);
}
