using Iris.Grains.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Iris.Hosting;

/// <summary>Logs where the silo listens once it is active, every change in the active silos of its Orleans cluster,
/// and when it stops.</summary>
internal sealed class SiloEndpointLogger(ILocalSiloDetails silo, IClusterMembershipService membership, ILogger<SiloEndpointLogger> logger)
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
                SiloLog.Listening(logger, silo.Name, silo.SiloAddress.Endpoint.ToString(), silo.GatewayAddress?.Endpoint.ToString() ?? "(none)", silo.ClusterId);
                _watch = Task.Run(WatchMembershipAsync);
                return Task.CompletedTask;
            },
            async _ =>
            {
                SiloLog.Stopping(logger, silo.Name);
                await _stopping.CancelAsync().ConfigureAwait(false);
                await _watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            });

    private async Task WatchMembershipAsync()
    {
        string? last = null;
        await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(_stopping.Token).ConfigureAwait(false))
        {
            var active = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.Endpoint.ToString()).Order().ToList();
            var silos = string.Join(", ", active);
            if (silos != last)
            {
                last = silos;
                SiloLog.ActiveSilos(logger, silo.ClusterId, active.Count, silos);
            }
        }
    }
}
