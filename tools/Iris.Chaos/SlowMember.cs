namespace Iris.Chaos;

/// <summary>The member of an overloaded cluster: waits its handler time, records the request's id (<c>O id</c>) and
/// echoes it. The line is written but not forced to disk: members are not killed during an overload run, so the
/// system's page cache keeps it when the runner kills the member at the end.</summary>
internal sealed class SlowMember(TimeSpan handlerTime, ExecutionFile file) : IClusterHandler
{
    public async Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
    {
        await Task.Delay(handlerTime, cancellationToken).ConfigureAwait(false);
        file.Append(ExecutionFile.Overloaded, request, durable: false);
        return request;
    }

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("the overloaded clusters take requests only");
}
