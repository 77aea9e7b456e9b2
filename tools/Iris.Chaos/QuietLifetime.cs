using Microsoft.Extensions.Hosting;

namespace Iris.Chaos;

/// <summary>The lifetime of the runner's Orleans client: no signal handling of its own. The console lifetime would take
/// Ctrl-C and SIGTERM to stop the client alone while the run went on; the runner handles them (Program.cs) by ending
/// the run, which kills every child process.</summary>
internal sealed class QuietLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
