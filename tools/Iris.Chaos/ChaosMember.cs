namespace Iris.Chaos;

/// <summary>The member of cluster <c>chaos</c> in each member process: records every request and broadcast id in its
/// <see cref="ExecutionFile"/> before it returns, echoes requests, and echoes every tunnel message back.</summary>
internal sealed class ChaosMember(ExecutionFile file) : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
    {
        file.Append(ExecutionFile.Request, request);
        return Task.FromResult(request);
    }

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        file.Append(ExecutionFile.Broadcast, message);
        return Task.CompletedTask;
    }

    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        await foreach (var message in tunnel.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await tunnel.SendAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }
}
