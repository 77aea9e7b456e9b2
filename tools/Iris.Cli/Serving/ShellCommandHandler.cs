using Iris.Cli.CommandLine;

namespace Iris.Cli.Serving;

/// <summary>
/// The member of <c>iris serve --command "…"</c>: each request runs the command with the request on its standard input,
/// and its standard output is the reply; a command that exits with another code than 0 fails the request with its
/// standard error (the caller gets a <see cref="RemoteException"/> saying it). Broadcasts and tunnel messages run the
/// command too: a broadcast's output goes to this process's standard output, a tunnel message's back on the tunnel.
/// The command sees <c>IRIS_CLUSTER</c> and <c>IRIS_KIND</c> (<c>request</c>, <c>broadcast</c> or <c>tunnel</c>).
/// </summary>
internal sealed class ShellCommandHandler(string cluster, string commandLine, MessageWriter output) : IClusterHandler
{
    /// <summary>At most this much of the command's standard error goes into the failure.</summary>
    private const int MaxErrorChars = 4096;

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => RunAsync("request", request, cancellationToken);

    public async Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        var printed = await RunAsync("broadcast", message, cancellationToken);
        if (printed.Length > 0)
        {
            output.Write(printed);
        }
    }

    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
            {
                await tunnel.SendAsync(await RunAsync("tunnel", message, cancellationToken), cancellationToken);
            }
        }
        catch (TunnelClosedException)
        {
            // The opener closed while an answer was on its way: nobody is left to read it.
        }
    }

    private async Task<byte[]> RunAsync(string kind, byte[] input, CancellationToken cancellationToken)
    {
        var environment = new Dictionary<string, string> { ["IRIS_CLUSTER"] = cluster, ["IRIS_KIND"] = kind };
        var result = await ShellCommand.RunAsync(commandLine, input, environment, cancellationToken);
        if (result.ExitCode == 0)
        {
            return result.Output;
        }

        var error = result.Error.Trim();
        if (error.Length > MaxErrorChars)
        {
            error = "…" + error[^MaxErrorChars..];
        }

        throw new InvalidOperationException(error.Length > 0 ? $"{error} (exit code {result.ExitCode})" : $"the command exited with code {result.ExitCode}");
    }
}
