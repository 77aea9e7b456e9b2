using System.Runtime.InteropServices;

namespace Iris.Cli.CommandLine;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as a cancellation: the first asks the command to finish (a member leaves its cluster, a
/// subscriber unsubscribes, a tunnel closes); a second one ends the process at once, as the signal would by default.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _requested = new();
    private readonly List<PosixSignalRegistration> _registrations = [];

    private Interruption()
    {
    }

    /// <summary>Cancelled on the first Ctrl-C or SIGTERM.</summary>
    public CancellationToken Token => _requested.Token;

    public bool IsRequested => _requested.IsCancellationRequested;

    public static Interruption Listen()
    {
        var interruption = new Interruption();
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            interruption._registrations.Add(PosixSignalRegistration.Create(signal, interruption.OnSignal));
        }

        return interruption;
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _requested.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (_requested.IsCancellationRequested)
        {
            // Asked twice: do not wait for the graceful end.
            Environment.Exit(ExitCodes.Interrupted);
        }

        context.Cancel = true;
        _requested.Cancel();
    }
}
