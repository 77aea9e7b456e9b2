namespace Iris.Grains.Members;

/// <summary>A member that answers every request with the request itself and sends every tunnel message back: the
/// diagnostic cluster a silo can serve (<c>Iris:Silo:EchoCluster</c>) so a deployment can be checked end to end.</summary>
internal sealed class EchoHandler : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        await foreach (var message in tunnel.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await tunnel.SendAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }
}
