using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;

namespace Iris.Overlay.Scribe;

internal static partial class Log
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Debug, Message = "Scribe node {Node} became the root of group {Group}")]
    public static partial void BecameRoot(ILogger logger, NodeHandle node, NodeKey group);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Debug, Message = "Scribe node {Node} is no longer the root of group {Group}; joining the new root")]
    public static partial void LostRoot(ILogger logger, NodeHandle node, NodeKey group);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Debug, Message = "Scribe node {Node} lost its parent {Parent} in group {Group}: {Reason}; joining again")]
    public static partial void Orphaned(ILogger logger, NodeHandle node, NodeHandle parent, NodeKey group, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Scribe node {Node} ignored a malformed message from {Sender}: {Reason}")]
    public static partial void Malformed(ILogger logger, NodeHandle node, NodeHandle sender, string reason);
}
