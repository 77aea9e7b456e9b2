using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;

namespace Iris.Overlay.Pastry;

internal static partial class Log
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Pastry node {Node} started a new ring")]
    public static partial void StartedRing(ILogger logger, NodeHandle node);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Pastry node {Node} joining through {Bootstrap}")]
    public static partial void Joining(ILogger logger, NodeHandle node, NodeAddress bootstrap);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Pastry node {Node} joined; root of its key was {Root}")]
    public static partial void Joined(ILogger logger, NodeHandle node, NodeHandle root);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Pastry node {Node} got no answer to its join through {Bootstrap} within {Timeout}; retrying")]
    public static partial void JoinRetry(ILogger logger, NodeHandle node, NodeAddress bootstrap, TimeSpan timeout);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Pastry node {Node} declared {Dead} dead: {Reason}")]
    public static partial void DeclaredDead(ILogger logger, NodeHandle node, NodeHandle dead, string reason);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Pastry node {Node}: {Peer} left the ring")]
    public static partial void PeerLeft(ILogger logger, NodeHandle node, NodeHandle peer);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Pastry node {Node} dropped a message for key {Key} on channel {Channel}: {Reason}")]
    public static partial void RouteDropped(ILogger logger, NodeHandle node, NodeKey key, ushort channel, string reason);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Pastry node {Node} leaving the ring")]
    public static partial void Leaving(ILogger logger, NodeHandle node);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Debug, Message = "Pastry node {Node}: {Peer} is alive again")]
    public static partial void Revived(ILogger logger, NodeHandle node, NodeHandle peer);
}
