namespace Iris.Members;

/// <summary>A member that answers every request with the request itself: the diagnostic cluster a silo can serve
/// (<c>Iris:Silo:EchoCluster</c>) so a deployment can be checked end to end.</summary>
internal sealed class EchoHandler : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
}
