using Iris.Protocol;

namespace Iris.Hosting;

/// <summary>
/// <see cref="IIrisClient"/> in an Orleans client: members behind an observer of this client, renewed every few
/// seconds so that a client that dies is dropped within a short lease, not after Orleans' client-drop timeout.
/// </summary>
internal sealed class ClientIrisClient : IrisProcessClient
{
    private readonly string _id = "client/" + Guid.NewGuid().ToString("N");

    private IMemberObserver? _observer;

    public ClientIrisClient(IrisServices services)
        : base(services, TimeSpan.FromSeconds(5))
    {
    }

    // Orleans holds observer objects only weakly: the base's strong reference to its host keeps the members reachable.
    private IMemberObserver Observer => _observer ??= Grains.CreateObjectReference<IMemberObserver>(Host);

    protected override MemberEndpoint Entry(double capacity, bool idempotent) =>
        new(null, capacity) { Observer = Observer, Id = _id, Idempotent = idempotent };
}
