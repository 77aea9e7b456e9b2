using Iris.Members;
using Iris.Protocol;

namespace Iris.Hosting;

/// <summary>
/// <see cref="IIrisClient"/> in an Orleans client: members behind an observer of this client, renewed every few
/// seconds so that a client that dies is dropped within a short lease, not after Orleans' client-drop timeout.
/// </summary>
internal sealed class ClientIrisClient : IrisProcessClient
{
    private readonly string _id = "client/" + Guid.NewGuid().ToString("N");

    // Orleans holds observer objects only weakly: this strong reference keeps the client's members reachable.
    private readonly MemberHost _target;
    private IMemberObserver? _observer;

    public ClientIrisClient(IrisServices services)
        : base(services, TimeSpan.FromSeconds(5)) =>
        _target = new MemberHost(services.Members, services.Tunnels, services.Grains);

    private IMemberObserver Observer => _observer ??= Grains.CreateObjectReference<IMemberObserver>(_target);

    protected override MemberEndpoint Entry(double capacity, bool idempotent) =>
        new(null, capacity) { Observer = Observer, Id = _id, Idempotent = idempotent };
}
