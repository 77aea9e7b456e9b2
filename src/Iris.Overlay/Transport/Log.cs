using System.Net;
using Microsoft.Extensions.Logging;

namespace Iris.Overlay.Transport;

internal static partial class Log
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Overlay transport listening on {Address} ({Key})")]
    public static partial void Listening(ILogger logger, NodeAddress address, string key);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Overlay connection with {Remote} refused: {Reason}")]
    public static partial void Refused(ILogger logger, EndPoint? remote, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Overlay connection with {Peer} closed: {Reason}")]
    public static partial void ClosedOnError(ILogger logger, NodeAddress peer, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Debug, Message = "Overlay connection with {Peer} closed: {Reason}")]
    public static partial void Closed(ILogger logger, NodeAddress peer, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "Cannot reach {Peer}: {Reason}; {Dropped} queued messages dropped, next attempt in {Delay}")]
    public static partial void DialFailed(ILogger logger, NodeAddress peer, string reason, int dropped, TimeSpan delay);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Debug, Message = "Overlay connection with {Peer} open ({Direction})")]
    public static partial void Opened(ILogger logger, NodeAddress peer, string direction);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "{Count} messages for {Peer} refused: larger than the frame limit of {Limit} bytes")]
    public static partial void Oversized(ILogger logger, NodeAddress peer, int count, int limit);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Message for {Peer} dropped: its queue of {Capacity} is full")]
    public static partial void QueueFull(ILogger logger, NodeAddress peer, int capacity);
}
