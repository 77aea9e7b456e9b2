using Iris.Cli.CommandLine;

namespace Iris.Cli.Serving;

/// <summary>The member of <c>iris serve --echo</c>: replies to each request with the request, sends each tunnel message
/// back on its tunnel, and prints each broadcast.</summary>
internal sealed class EchoHandler(MessageWriter output) : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        output.Write(message);
        return Task.CompletedTask;
    }

    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                await tunnel.SendAsync(message, cancellationToken);
            }
        }
        catch (TunnelClosedException)
        {
            // The opener closed while an echo was on its way: nobody is left to read it.
        }
    }
}
