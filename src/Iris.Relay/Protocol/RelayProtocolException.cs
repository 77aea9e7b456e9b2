namespace Iris.Relay.Protocol;

/// <summary>The client broke the protocol: a bad opcode, a bad boolean, a field over its limit, a message that is not
/// allowed now. The connection is closed with <see cref="Exception.Message"/> as the reason; nothing else is
/// harmed.</summary>
internal sealed class RelayProtocolException(string reason) : Exception($"protocol violation: {reason}");
