using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Iris.Placement;

/// <summary>Places a grain on the silo named by its key (a silo address in parsable form): per-silo member hosts.</summary>
[GenerateSerializer]
[Immutable]
internal sealed class SiloPinnedPlacement : PlacementStrategy
{
    public static readonly SiloPinnedPlacement Instance = new();
}

/// <summary>Marks a grain class as placed by <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class SiloPinnedAttribute() : PlacementAttribute(SiloPinnedPlacement.Instance);

/// <summary>Puts a silo-pinned grain on its silo, and refuses when that silo is not active.</summary>
internal sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silo = SiloAddress.FromParsableString(target.GrainIdentity.Key.ToString()!);
        if (!context.GetCompatibleSilos(target).Contains(silo))
        {
            throw new SiloUnavailableException($"Silo {silo} is not an active member of the cluster; its members are gone with it.");
        }

        return Task.FromResult(silo);
    }
}
