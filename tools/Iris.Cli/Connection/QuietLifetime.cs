using Microsoft.Extensions.Hosting;

namespace Iris.Cli.Connection;

/// <summary>The lifetime of the command's Orleans client: no signal handling of its own. The console lifetime would take
/// Ctrl-C to stop the client under a command that is still using it; each command handles Ctrl-C itself
/// (<see cref="CommandLine.Interruption"/>) and then stops the client in its own time.</summary>
internal sealed class QuietLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
