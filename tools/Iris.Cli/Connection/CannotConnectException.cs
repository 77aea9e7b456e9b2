namespace Iris.Cli.Connection;

/// <summary>No Iris network could be reached; the message says what was tried and what to check.</summary>
internal sealed class CannotConnectException(string message) : Exception(message);
