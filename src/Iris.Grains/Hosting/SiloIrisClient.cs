using Iris.Grains.Dissemination;
using Iris.Protocol;

namespace Iris.Hosting;

/// <summary><see cref="IIrisClient"/> in a silo: members behind the silo's member host grain, and the silo in the
/// Scribe trees of the names it has members of.</summary>
internal sealed class SiloIrisClient(IrisServices services, ILocalSiloDetails silo, ScribeDissemination trees)
    : IrisProcessClient(services, TimeSpan.FromSeconds(10))
{
    protected override MemberEndpoint Entry(double capacity, bool idempotent) => new(silo.SiloAddress, capacity) { Idempotent = idempotent, Gateway = silo.GatewayAddress };

    protected override Task JoinTreesAsync(Audience audience) => trees.JoinAsync(audience);

    protected override Task LeaveTreesAsync(Audience audience) => trees.LeaveAsync(audience);
}
