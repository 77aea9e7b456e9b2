using Iris.Calls;
using Iris.Dissemination;
using Iris.Protocol;
using Iris.Requests;
using Orleans.Concurrency;

namespace Iris.Grains.Requests;

/// <summary>
/// The entry point of a cluster on whichever silo is called: a local, stateless worker, reentrant so that a request
/// never waits behind a broadcast. A request is given its id here and goes straight to one member's host
/// (<see cref="RequestSender"/>); a broadcast is handed to a rendezvous and returns once accepted
/// (<see cref="DisseminationSender"/>).
/// </summary>
[StatelessWorker]
[Reentrant]
internal sealed class ClusterGrain(RequestSender requests, DisseminationSender dissemination) : Grain, IClusterGrain
{
    private string Cluster => this.GetPrimaryKeyString();

    public Task<byte[]> Request(byte[] request, TimeSpan timeout) =>
        requests.RequestAsync(Cluster, CallIds.Next(), request, timeout, isolate: false, CancellationToken.None);

    public Task Broadcast(byte[] message) => dissemination.SendAsync(Audience.Cluster(Cluster), message, CancellationToken.None);
}
