using Iris.Grains.Dissemination;
using Iris.Grains.Rendezvous;
using Iris.Members;
using Iris.Overlay;
using Iris.Placement;
using Iris.Protocol;
using Iris.Ring;
using Iris.Status;
using Orleans.Concurrency;

namespace Iris.Grains.Status;

/// <summary>A silo's status, on that silo (key: the silo's address): its ring node, the names served here, the
/// rendezvous splits rooted here with their registered processes, its Scribe trees and its traffic. Reentrant: it keeps
/// nothing, and one status waiting for a slow rendezvous must not hold up the next.</summary>
[SiloPinned]
[Reentrant]
internal sealed class NodeStatusGrain(
    IrisOverlay overlay, LocalMembers members, LocalRendezvous rendezvous, ScribeDissemination trees, IrisTraffic traffic, ILocalSiloDetails silo, TimeProvider time)
    : Grain, INodeStatusGrain
{
    /// <summary>How long a rendezvous here has to list its members for the status.</summary>
    private static readonly TimeSpan SplitWait = TimeSpan.FromSeconds(2);

    public async Task<NodeStatus> GetStatus()
    {
        var node = overlay.Host?.Node;
        var (counterClockwise, clockwise) = node?.GetLeafSet() ?? ([], []);
        // Every split rooted here is asked at once; one that does not answer in time is left out of this status.
        var asks = rendezvous.Keys.Select(key => (Key: key, Name: Parse(key)))
            .Where(k => k.Name is not null)
            .Select(k => (k.Name!.Value, Members: GrainFactory.GetGrain<IRendezvousGrain>(k.Key).GetMembers().WaitAsync(SplitWait)))
            .ToArray();
        await Task.WhenAll(asks.Select(a => (Task)a.Members)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        var splits = asks.Where(a => a.Members.IsCompletedSuccessfully).Select(a => new RendezvousStatus(
            a.Value.Kind,
            a.Value.Name,
            a.Value.Split,
            [.. a.Members.Result.Select(m => new RegisteredProcess(m.Id, m.Silo?.ToParsableString(), m.Capacity)).OrderBy(p => p.Process, StringComparer.Ordinal)]));

        var rooted = rendezvous.Keys.ToDictionary(ScribeDissemination.GroupOf, k => k);
        var scribe = overlay.Scribe;
        var groups = scribe?.Groups() ?? [];
        var treeStatus = new List<TreeStatus>(groups.Length);
        foreach (var group in groups)
        {
            if (scribe!.GetGroup(group) is { } tree)
            {
                treeStatus.Add(new TreeStatus(
                    group.ToString(),
                    trees.NameOf(group) ?? rooted.GetValueOrDefault(group),
                    tree.IsRoot,
                    tree.Parent?.Key.ToString(),
                    tree.Children.Count,
                    tree.SubtreeCapacity));
            }
        }

        return new NodeStatus
        {
            Silo = silo.SiloAddress.ToParsableString(),
            RingKey = node?.Self.Key.ToString() ?? string.Empty,
            RingPosition = node is null ? 0 : PositionOf(node.Self.Key),
            OverlayAddress = node?.Self.Address.ToString() ?? string.Empty,
            InRing = overlay.IsInRing,
            Gateway = silo.GatewayAddress?.Endpoint.ToString(),
            LeafSet = [.. counterClockwise.Concat(clockwise).DistinctBy(n => n.Key).Select(n => new RingNeighbour(n.Key.ToString(), PositionOf(n.Key), n.Address.ToString()))],
            RoutingTableEntries = node?.GetRoutingTable().Count ?? 0,
            Served = [.. members.Served().Select(s => new LocalName(KindOf(s.Kind), s.Name, s.Count, s.Capacity)).OrderBy(s => s.Kind).ThenBy(s => s.Name, StringComparer.Ordinal)],
            Rendezvous = [.. splits.OrderBy(s => s.Kind).ThenBy(s => s.Name, StringComparer.Ordinal).ThenBy(s => s.Split)],
            Trees = [.. treeStatus.OrderBy(t => t.Name ?? "~" + t.Group, StringComparer.Ordinal)],
            Traffic = traffic.Read(),
            Taken = time.GetUtcNow(),
        };
    }

    /// <summary>Where <paramref name="key"/> sits on the ring, as a fraction of the ring.</summary>
    public static double PositionOf(NodeKey key) => (double)(ulong)(key.Value >> 64) / Math.Pow(2, 64);

    private static NameKind KindOf(AudienceKind kind) => kind == AudienceKind.Cluster ? NameKind.Cluster : NameKind.Topic;

    /// <summary>The name and split of a rendezvous key (<c>cluster/name#split</c> or <c>topic/name#split</c>).</summary>
    private static (NameKind Kind, string Name, int Split)? Parse(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var hash = key.LastIndexOf('#');
        if (slash < 0 || hash < slash || !int.TryParse(key.AsSpan(hash + 1), out var split))
        {
            return null;
        }

        var kind = key[..slash] switch
        {
            "cluster" => NameKind.Cluster,
            "topic" => NameKind.Topic,
            _ => (NameKind?)null,
        };
        return kind is { } k ? (k, key[(slash + 1)..hash], split) : null;
    }
}
