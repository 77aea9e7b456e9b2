using System.Threading.Channels;

namespace Iris.Tests.Tunnels;

/// <summary>A member that accepts tunnels and hands them to the test, or serves them with <see cref="Serve"/>; its
/// handler runs until the tunnel closes.</summary>
internal sealed class TunnelMember(Func<ITunnel, CancellationToken, Task>? serve = null) : IClusterHandler
{
    public Channel<ITunnel> Accepted { get; } = Channel.CreateUnbounded<ITunnel>();

    public Func<ITunnel, CancellationToken, Task>? Serve => serve;

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        if (serve is not null)
        {
            await serve(tunnel, cancellationToken);
            return;
        }

        Accepted.Writer.TryWrite(tunnel);
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }

    /// <summary>Sends back every message until the opener closes.</summary>
    public static TunnelMember Echo() => new(async (tunnel, cancellationToken) =>
    {
        await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
        {
            await tunnel.SendAsync(message, cancellationToken);
        }
    });

    public async Task<ITunnel> NextAsync() => await Accepted.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
}

/// <summary>A member that does not serve tunnels: the default handler refuses.</summary>
internal sealed class RequestOnlyMember : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
}
