namespace Iris.Silo;

/// <summary>The exit codes of the Iris.Silo program, for the supervisor that runs it (systemd, Kubernetes).</summary>
internal static class ExitCodes
{
    /// <summary>Stopped on request (Ctrl-C, SIGTERM).</summary>
    public const int Stopped = 0;

    /// <summary>Could not start: a setting or the network key is wrong; the message says which. Restarting does not
    /// help until the setting is fixed.</summary>
    public const int CannotStart = 1;

    /// <summary>The silo's cluster declared it dead (it was cut off from the majority, or stalled, for longer than
    /// failure detection takes). Start the program again: it joins as a new silo.</summary>
    public const int DeclaredDead = 3;
}
