using Microsoft.Extensions.Logging;

namespace Iris.Grains.Diagnostics;

/// <summary>
/// The log events of Iris.Grains. Event ids are stable and unique across Iris (the whole table is on
/// <c>Iris.Diagnostics.Log</c> in Iris.Client): 100–119 silo hosting and the ring (103–109 the silo declared dead, with Iris.Silo), 120–139 dissemination, 200–219 the membership table,
/// 400–419 placement.
/// </summary>
internal static partial class SiloLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Iris silo {Name} listening: silo-to-silo on {SiloEndpoint}, clients on {GatewayEndpoint}, cluster '{ClusterId}'")]
    public static partial void Listening(ILogger logger, string name, string siloEndpoint, string gatewayEndpoint, string clusterId);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Iris silo {Name} stopping")]
    public static partial void Stopping(ILogger logger, string name);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Orleans cluster '{ClusterId}' has {Count} active silos: {Silos}")]
    public static partial void ActiveSilos(ILogger logger, string clusterId, int count, string silos);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Iris silo {Silo} was declared dead by its cluster and stops: it can come back only as a new silo. Orleans says: {Reason}")]
    public static partial void DeclaredDead(ILogger logger, string silo, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} joined")]
    public static partial void NeighbourJoined(ILogger logger, Overlay.NodeKey key, Overlay.Transport.NodeAddress address);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Ring neighbour {Key} at {Address} left")]
    public static partial void NeighbourLeft(ILogger logger, Overlay.NodeKey key, Overlay.Transport.NodeAddress address);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Network key {Fingerprint} from {Source}")]
    public static partial void NetworkKeyFrom(ILogger logger, string fingerprint, string source);

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Membership table of cluster '{ClusterId}' on the ring (created here: {Created})")]
    public static partial void MembershipTableOnRing(ILogger logger, string clusterId, bool created);

    [LoggerMessage(EventId = 201, Level = LogLevel.Debug, Message = "Membership table of cluster '{ClusterId}' changed meanwhile; retrying (attempt {Attempt})")]
    public static partial void MembershipTableRetry(ILogger logger, string clusterId, int attempt);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Membership table of cluster '{ClusterId}' cannot be read yet ({Reason}); this silo tries again in {Pause}")]
    public static partial void MembershipTableNotYet(ILogger logger, string clusterId, string reason, TimeSpan pause);

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "Reading the membership table after a neighbour joined failed: {Reason}")]
    public static partial void MembershipRefreshFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Membership table of cluster '{ClusterId}' on the ring is not the one silo {Silo} joined (rings that formed apart have merged): the silo adds its row to it, which now has {Rows} rows")]
    public static partial void MembershipTableAdopted(ILogger logger, string clusterId, SiloAddress silo, int rows);

    [LoggerMessage(EventId = 400, Level = LogLevel.Debug, Message = "Rendezvous {Name} placed here for now: {Reason}")]
    public static partial void RendezvousPlacedHere(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "Message {Id} to {Audience}, and those sent with it, could not go down its tree from here; its members are reached directly")]
    public static partial void DisseminationFailed(ILogger logger, string audience, Guid id, Exception exception);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "Message {Id} to {Audience}, and those sent with it: its tree did not answer within {Wait}; its members are reached directly")]
    public static partial void TreeSlow(ILogger logger, string audience, Guid id, TimeSpan wait);

    [LoggerMessage(EventId = 122, Level = LogLevel.Warning, Message = "The young rendezvous {Key} could not read its saved member list ({Reason}): the messages it accepted meanwhile reach only the members it knows itself")]
    public static partial void SavedMembersUnread(ILogger logger, string key, string reason);
}
