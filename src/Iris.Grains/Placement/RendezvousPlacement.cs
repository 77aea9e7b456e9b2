using Iris.Ring;
using Iris.Overlay;
using Iris.Grains.Diagnostics;
using Iris.Calls;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Iris.Placement;

/// <summary>Places a grain keyed by a name on the silo whose overlay node is the root of the name's key.</summary>
[GenerateSerializer]
[Immutable]
internal sealed class RendezvousPlacement : PlacementStrategy
{
    public static readonly RendezvousPlacement Instance = new();

    /// <summary>The ring key of a rendezvous grain's name (<c>cluster/name#split</c>): the key of the split's Scribe
    /// group (<see cref="Overlay.Scribe.GroupNames"/>), so the grain lives where the group's tree is rooted.</summary>
    public static NodeKey KeyOf(string grainKey) => NodeKey.FromName(grainKey);
}

/// <summary>Marks a grain class as placed by <see cref="RendezvousPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class RendezvousPlacementAttribute() : PlacementAttribute(RendezvousPlacement.Instance);

/// <summary>
/// Asks the ring which node is the root of the grain's name and places the grain on that node's silo. When the ring
/// cannot answer in time (it is repairing) the grain goes to this silo, and moves once the ring has settled.
/// </summary>
internal sealed class RendezvousPlacementDirector(IrisOverlay overlay, ILogger<RendezvousPlacementDirector> logger, [FromKeyedServices(LockedRandom.ServiceKey)] Random random) : IPlacementDirector
{
    private static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(2);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var compatible = context.GetCompatibleSilos(target);
        var name = target.GrainIdentity.Key.ToString()!;
        try
        {
            var locator = await overlay.GetLocatorAsync(CancellationToken.None).ConfigureAwait(false);
            var tag = await locator.FindRootAsync(RendezvousPlacement.KeyOf(name), LookupTimeout).ConfigureAwait(false);
            if (tag.Length > 0 && SiloAddress.FromParsableString(tag) is var silo && compatible.Contains(silo))
            {
                return silo;
            }
        }
        catch (TimeoutException e)
        {
            SiloLog.RendezvousPlacedHere(logger, name, e.Message);
        }

        return compatible.Contains(context.LocalSilo) ? context.LocalSilo : compatible[random.Next(compatible.Length)];
    }
}
