using Microsoft.Extensions.DependencyInjection;

namespace Iris.Hosting;

/// <summary>
/// Whether this silo was declared dead by its cluster, and why. <see cref="DeclaredDeadHandler"/> sets it and stops
/// the host; the program that hosts the silo reads it once the host has stopped, to decide what comes next (Iris.Silo
/// exits with its own code, or starts a new silo in development).
/// </summary>
internal sealed class SiloDeath
{
    private readonly TaskCompletionSource<string> _declared = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes, with Orleans' reason, when the silo learns it was declared dead.</summary>
    public Task<string> Declared => _declared.Task;

    /// <summary>Whether the silo was declared dead.</summary>
    public bool IsDeclared => _declared.Task.IsCompleted;

    /// <summary>Records the declaration; false when it was recorded already.</summary>
    public bool TryDeclare(string reason) => _declared.TrySetResult(reason);

    /// <summary>Whether the silo of <paramref name="services"/> finds its own row Dead in its membership view.</summary>
    public static bool InOwnView(IServiceProvider services) =>
        services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.GetSiloStatus(services.GetRequiredService<ILocalSiloDetails>().SiloAddress) == SiloStatus.Dead;
}
