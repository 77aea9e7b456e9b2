using System.CommandLine;
using Iris.Cli.CommandLine;

namespace Iris.Cli.Connection;

/// <summary>What every command works with: the global options, Ctrl-C, and where status lines go.</summary>
internal sealed class CliContext(GlobalOptions globals, Interruption interruption)
{
    public GlobalOptions Globals => globals;

    /// <summary>Cancelled on the first Ctrl-C or SIGTERM.</summary>
    public CancellationToken Interrupted => interruption.Token;

    /// <summary>Connects to the network the global options and the environment describe.</summary>
    public Task<IrisConnection> ConnectAsync(ParseResult parse) => IrisConnection.OpenAsync(globals.Settings(parse), Interrupted);

    /// <summary>Writes a status line to standard error, where it never mixes with the messages on standard output.</summary>
    public static void Status(string line) => Console.Error.WriteLine($"iris: {line}");
}
