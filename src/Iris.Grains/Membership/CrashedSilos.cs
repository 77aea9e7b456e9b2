using System.Net;
using System.Net.Sockets;
using Iris.Grains.Diagnostics;
using Iris.Overlay;
using Iris.Overlay.Transport;
using Microsoft.Extensions.Logging;

namespace Iris.Membership;

/// <summary>
/// Declares a crashed silo dead as soon as the ring has lost its node and its silo port refuses connections, instead of
/// after Orleans' own probes run out. Orleans probes each silo every <c>ProbeTimeout</c> (5 s) and declares it dead
/// after three missed probes and two votes: 15 s or more after a crash, during which its grain directory partition and
/// its activations fail every call that needs them. The ring notices a crashed node within a second or two (missed
/// heartbeats, an unacknowledged hop). When a ring neighbour leaves, its silo (asked of it when it joined; else each
/// active silo on its host) is asked for a TCP connection on its silo port: a refusal means nothing listens there any more, and the silo is declared dead
/// with Orleans' <c>TryKill</c>, as Orleans' Kubernetes hosting does for a silo whose pod is gone. A silo that accepts
/// the connection (alive, or a new process on the same port), or does not answer within <see cref="ConnectTime"/>
/// (a network split, an overloaded host), is left to Orleans' probes: a pause or a split never kills a silo here.
/// </summary>
internal sealed class CrashedSilos(IClusterMembershipService membership, ILocalSiloDetails local, ILogger<CrashedSilos> logger)
{
    /// <summary>How long a connection to a silo port may take before the check gives up and leaves the silo to Orleans.</summary>
    public static readonly TimeSpan ConnectTime = TimeSpan.FromSeconds(2);

    /// <summary>How long asking a neighbour that joined for its silo's address may take.</summary>
    private static readonly TimeSpan LookupTime = TimeSpan.FromSeconds(5);

    // The silo of each ring neighbour, asked when it joined: the one silo to check when it leaves.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<NodeKey, SiloAddress> _silos = new();

    /// <summary>Learns the silo of ring neighbour <paramref name="node"/>, which has just joined, by
    /// <paramref name="siloOf"/>. Returns at once; never throws (a neighbour whose silo is not learnt has every active
    /// silo on its host checked when it leaves).</summary>
    public void NodeJoined(NodeKey node, Func<CancellationToken, Task<SiloAddress>> siloOf) => _ = Task.Run(async () =>
    {
        try
        {
            using var limit = new CancellationTokenSource(LookupTime);
            _silos[node] = await siloOf(limit.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Not learnt: the host's silos are checked instead.
        }
    });

    /// <summary>Checks the silo of ring neighbour <paramref name="node"/> at <paramref name="address"/>, which the ring
    /// has just lost (every active silo on its host when its silo is not known). Returns at once; never throws.</summary>
    public void NodeLeft(NodeKey node, NodeAddress address)
    {
        var known = _silos.TryRemove(node, out var silo) ? silo : null;
        var host = HostOf(address);
        foreach (var member in membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status == SiloStatus.Active && !member.SiloAddress.Equals(local.SiloAddress)
                && (known is not null ? member.SiloAddress.Equals(known) : host is not null && member.SiloAddress.Endpoint.Address.Equals(host)))
            {
                _ = Task.Run(() => CheckAsync(member.SiloAddress));
            }
        }
    }

    /// <summary>The IP address of a TCP overlay address (<c>tcp://ip:port</c>); null for any other.</summary>
    internal static IPAddress? HostOf(NodeAddress address)
    {
        const string Scheme = "tcp://";
        return address.Value is { } text && text.StartsWith(Scheme, StringComparison.Ordinal) && IPEndPoint.TryParse(text[Scheme.Length..], out var endpoint)
            ? endpoint.Address
            : null;
    }

    /// <summary>Declares <paramref name="silo"/> dead when its silo port refuses a connection.</summary>
    private async Task CheckAsync(SiloAddress silo)
    {
        try
        {
            if (!await RefusesAsync(silo.Endpoint).ConfigureAwait(false))
            {
                return;
            }

            SiloLog.CrashedSilo(logger, silo.ToString());
            if (!await membership.TryKill(silo).ConfigureAwait(false))
            {
                SiloLog.CrashedSiloNotDeclared(logger, silo.ToString());
            }
        }
        catch (Exception e)
        {
            // The membership table could not be written (the ring is settling, this side is a minority): Orleans' own
            // probes still declare the silo dead.
            SiloLog.CrashedSiloCheckFailed(logger, silo.ToString(), e.Message);
        }
    }

    /// <summary>Whether a TCP connection to <paramref name="endpoint"/> is refused (nothing listens there); false when it
    /// is accepted, times out or fails otherwise.</summary>
    internal static async Task<bool> RefusesAsync(IPEndPoint endpoint)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var limit = new CancellationTokenSource(ConnectTime);
        try
        {
            await socket.ConnectAsync(endpoint, limit.Token).ConfigureAwait(false);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}
