namespace Iris.Cli.CommandLine;

/// <summary>The command line or a setting is wrong; the message says what to change. Exits with
/// <see cref="ExitCodes.Usage"/>.</summary>
internal sealed class UsageException(string message) : Exception(message);
