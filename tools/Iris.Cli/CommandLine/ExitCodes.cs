namespace Iris.Cli.CommandLine;

/// <summary>The exit codes of the <c>iris</c> command, for scripts that call it.</summary>
internal static class ExitCodes
{
    /// <summary>Done: the command did what it was asked, or a long-running command was stopped with Ctrl-C.</summary>
    public const int Ok = 0;

    /// <summary>The Iris operation failed: the cluster has no members, no reply in time, the member failed the request,
    /// every member was overloaded, a tunnel closed with an error, or a benchmark completed no message.</summary>
    public const int Failed = 1;

    /// <summary>The command line or a setting is wrong (unknown command or option, missing argument, unreadable
    /// payload file, invalid network key). Nothing was sent.</summary>
    public const int Usage = 2;

    /// <summary>No Iris network could be reached: no node's beacon heard, or no gateway accepted the connection
    /// within the connect timeout.</summary>
    public const int CannotConnect = 3;

    /// <summary>A one-shot command (request, broadcast, publish, bench) was interrupted with Ctrl-C before it finished.</summary>
    public const int Interrupted = 130;
}
