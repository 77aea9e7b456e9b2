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

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "A {Type} message for {Peer} refused: {Reason}; the connection goes on")]
    public static partial void Oversized(ILogger logger, NodeAddress peer, MessageType type, string reason);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Warning, Message = "Writing to {Peer} failed ({Reason}); {Dropped} messages dropped, the connection is made again")]
    public static partial void WriteFailed(ILogger logger, NodeAddress peer, string reason, int dropped, Exception exception);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Error, Message = "The receiver of overlay messages threw on a {Type} message from {Peer}; the connection goes on")]
    public static partial void ReceiverFailed(ILogger logger, NodeAddress peer, MessageType type, Exception exception);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "Connection to {Peer} said it follows connection {Earlier}, which did not finish within {Timeout}; going on")]
    public static partial void HandOverTimedOut(ILogger logger, NodeAddress peer, UInt128 earlier, TimeSpan timeout);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Debug, Message = "Connection from {Remote} closed before its handshake: {InProgress} handshakes in progress, {FromAddress} from that address")]
    public static partial void HandshakeCapReached(ILogger logger, EndPoint? remote, int inProgress, int fromAddress);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Message for {Peer} dropped: its queue of {Capacity} is full")]
    public static partial void QueueFull(ILogger logger, NodeAddress peer, int capacity);
}
