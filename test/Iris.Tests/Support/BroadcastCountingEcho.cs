namespace Iris.Tests.Support;

/// <summary>A member that echoes requests and counts the broadcasts it receives.</summary>
internal sealed class BroadcastCountingEcho : IClusterHandler
{
    private int _broadcasts;

    public int Broadcasts => Volatile.Read(ref _broadcasts);

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _broadcasts);
        return Task.CompletedTask;
    }
}
