using Microsoft.Extensions.Logging;

namespace Iris.Relay.Diagnostics;

/// <summary>The log events of the relay endpoint (ids 500–519 in the table on <c>Iris.Diagnostics.Log</c>).</summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Iris relay endpoint listening on {Endpoint} (Iris client libraries, protocol v1.0-draft2)")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 501, Level = LogLevel.Debug, Message = "Relay client {Remote} connected (member of '{Cluster}', empty for a plain client)")]
    public static partial void Connected(ILogger logger, string remote, string cluster);

    [LoggerMessage(EventId = 502, Level = LogLevel.Debug, Message = "Relay client {Remote} disconnected")]
    public static partial void Disconnected(ILogger logger, string remote);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "Relay client {Remote} refused: {Reason}")]
    public static partial void Denied(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 504, Level = LogLevel.Warning, Message = "Relay client {Remote} disconnected: {Reason}")]
    public static partial void Violation(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 505, Level = LogLevel.Debug, Message = "Relay client {Remote} closes its connection")]
    public static partial void ClosedByClient(ILogger logger, string remote);

    [LoggerMessage(EventId = 506, Level = LogLevel.Warning, Message = "Relay client {Remote} did not confirm an incoming tunnel within {Timeout}: the tunnel is dropped")]
    public static partial void TunnelNotConfirmed(ILogger logger, string remote, TimeSpan timeout);

    [LoggerMessage(EventId = 507, Level = LogLevel.Debug, Message = "Relay client {Remote} could not open a tunnel to cluster '{Cluster}': {Reason}")]
    public static partial void TunnelNotOpened(ILogger logger, string remote, string cluster, string reason);

    [LoggerMessage(EventId = 508, Level = LogLevel.Debug, Message = "Relay client {Remote}: {Operation} on '{Name}' failed: {Reason}")]
    public static partial void SendFailed(ILogger logger, string remote, string operation, string name, string reason);

    [LoggerMessage(EventId = 509, Level = LogLevel.Warning, Message = "Relay client {Remote} could not leave cluster '{Cluster}' cleanly (its registration ends with its lease): {Reason}")]
    public static partial void LeaveFailed(ILogger logger, string remote, string cluster, string reason);

    [LoggerMessage(EventId = 510, Level = LogLevel.Warning, Message = "Iris relay endpoint not started: {Endpoint} is taken (by another node on this machine?). Set Iris:Relay:Port to serve Iris client libraries from this node.")]
    public static partial void PortTaken(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 511, Level = LogLevel.Warning, Message = "Iris relay endpoint could not accept a connection: {Reason}")]
    public static partial void AcceptFailed(ILogger logger, string reason);
}
