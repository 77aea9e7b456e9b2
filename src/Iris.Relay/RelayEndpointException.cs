namespace Iris.Relay;

/// <summary>The relay endpoint could not start; the message says which setting to change.</summary>
public sealed class RelayEndpointException(string message, Exception inner) : Exception(message, inner);
