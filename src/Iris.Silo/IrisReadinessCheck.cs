using Iris.Ring;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Iris.Silo;

/// <summary>
/// Ready while the node serves: its overlay node is in a ring and its silo is active in the Orleans cluster, and the
/// node is not shutting down (false from the moment a stop is asked for, before members leave).
/// </summary>
internal sealed class IrisReadinessCheck(IrisOverlay overlay, IClusterMembershipService membership, ILocalSiloDetails silo, IHostApplicationLifetime lifetime)
    : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Check());

    private HealthCheckResult Check()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("The node is shutting down.");
        }

        if (!overlay.IsInRing)
        {
            return HealthCheckResult.Unhealthy("The overlay node is not in a ring yet.");
        }

        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        return status == SiloStatus.Active
            ? HealthCheckResult.Healthy($"In the ring and active in the Orleans cluster ({membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active)} active silos).")
            : HealthCheckResult.Unhealthy($"The silo is {status} in the Orleans cluster, not active.");
    }
}
