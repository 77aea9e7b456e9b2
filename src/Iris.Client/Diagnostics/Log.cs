using Microsoft.Extensions.Logging;

namespace Iris.Diagnostics;

/// <summary>
/// The log events of Iris.Client. Event ids are stable; the table of all Iris ids:
/// <list type="table">
/// <item><term>100–119</term><description>silo hosting and the ring (Iris.Grains)</description></item>
/// <item><term>120–139</term><description>dissemination at the rendezvous (Iris.Grains)</description></item>
/// <item><term>200–219</term><description>membership table (Iris.Grains)</description></item>
/// <item><term>300–319</term><description>tunnels (this assembly)</description></item>
/// <item><term>320–339</term><description>members and registrations (this assembly)</description></item>
/// <item><term>340–359</term><description>secured Orleans connections (this assembly)</description></item>
/// <item><term>400–419</term><description>placement (Iris.Grains)</description></item>
/// <item><term>500–519</term><description>the relay endpoint (Iris.Relay)</description></item>
/// <item><term>1000–4999</term><description>the overlay (Iris.Overlay: Pastry 1000, Scribe 2000, transport 3000, hosting and discovery 4000)</description></item>
/// </list>
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Tunnel handler of cluster '{Cluster}' failed on tunnel {Tunnel}")]
    public static partial void TunnelHandlerFailed(ILogger logger, Exception exception, string cluster, Guid tunnel);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Peer {Peer} of {Count} tunnels is gone: {Detail}")]
    public static partial void TunnelPeerDied(ILogger logger, string peer, int count, string detail);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "A keep-alive check of tunnel peer {Peer} failed at another silo, not counted against the peer: {Detail}")]
    public static partial void TunnelCheckFailedElsewhere(ILogger logger, string peer, string detail);

    [LoggerMessage(EventId = 320, Level = LogLevel.Debug, Message = "Renewing the registrations of this process failed; the lease outlives several renewals: {Reason}")]
    public static partial void RenewalFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 321, Level = LogLevel.Warning, Message = "{Count} message(s) to {Audience}, the first {Id}, were not delivered to member process {Member}: {Reason}")]
    public static partial void NotDelivered(ILogger logger, Guid id, int count, string audience, string member, string reason);

    [LoggerMessage(EventId = 340, Level = LogLevel.Warning, Message = "Orleans connection with {Remote} refused: {Reason}")]
    public static partial void ConnectionRefused(ILogger logger, string remote, string reason);
}
