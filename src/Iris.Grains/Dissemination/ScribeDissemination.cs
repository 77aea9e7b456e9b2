using Iris.Calls;
using Iris.Dissemination;
using Iris.Members;
using Iris.Overlay;
using Iris.Placement;
using Iris.Protocol;
using Iris.Ring;

namespace Iris.Grains.Dissemination;

/// <summary>
/// Broadcasts and publications down a name's Scribe tree, hop by hop over Orleans calls. Every silo with members of a
/// cluster (or subscribers of a topic) subscribes its overlay node to the Scribe group of each of the name's
/// rendezvous keys; the tree of a key is rooted at the key's ring root, which is where the rendezvous grain lives. The
/// rendezvous starts a message at its own silo; each silo hands it to its own members (their handlers run after the
/// hop returns) and calls the member host of each of its children in the tree (the silo of a child node is asked of
/// the node once and remembered). Each silo answers with the member silos reached below it, and the rendezvous sends
/// directly (see <see cref="Disseminator"/>) to every member it knows that the tree did not reach: Orleans clients,
/// which are not in trees, and silos whose tree branch is still joining or being repaired. So every member gets the
/// message once, and the tree carries it whenever the tree is whole.
/// </summary>
internal sealed class ScribeDissemination(IrisOverlay overlay, LocalMembers members, IGrainFactory grains, ILocalSiloDetails silo, TimeProvider time)
{
    /// <summary>The Scribe member name a silo subscribes under: one per silo and group.</summary>
    private const string TreeMember = "members";

    /// <summary>The longest a hop waits for its overlay node or a child's silo address: well inside the minute or two
    /// that processes remember message ids, so a late hop never delivers a message a second time.</summary>
    private static readonly TimeSpan HopTime = TimeSpan.FromSeconds(10);

    private readonly RecentIds _passed = new(time);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<NodeKey, string> _names = new();
    private long _treeDeliveries;
    private long _directDeliveries;

    /// <summary>Silos this one delivered to through a tree (as a hop, itself included).</summary>
    public long TreeDeliveries => Interlocked.Read(ref _treeDeliveries);

    /// <summary>Member silos a rendezvous here had to reach directly because the tree did not.</summary>
    public long DirectDeliveries => Interlocked.Read(ref _directDeliveries);

    /// <summary>The Scribe group of a rendezvous key: the ring key the rendezvous is placed by, so the tree's root is the
    /// rendezvous' silo.</summary>
    public static NodeKey GroupOf(string rendezvousKey) => RendezvousPlacement.KeyOf(rendezvousKey);

    /// <summary>Puts this silo in the trees of <paramref name="audience"/>'s rendezvous keys.</summary>
    public async Task JoinAsync(Audience audience)
    {
        var scribe = await overlay.GetScribeAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var key in audience.RendezvousKeys())
        {
            _names[GroupOf(key)] = key;
            scribe.Subscribe(GroupOf(key), TreeMember);
        }
    }

    /// <summary>The rendezvous key of a Scribe group this silo joined for its members, if it did.</summary>
    public string? NameOf(NodeKey group) => _names.GetValueOrDefault(group);

    /// <summary>Takes this silo out of those trees.</summary>
    public async Task LeaveAsync(Audience audience)
    {
        var scribe = await overlay.GetScribeAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var key in audience.RendezvousKeys())
        {
            _names.TryRemove(GroupOf(key), out _);
            scribe.Unsubscribe(GroupOf(key), TreeMember);
        }
    }

    /// <summary>
    /// Hands messages to this silo's members of <paramref name="audience"/> and passes them to this node's children in
    /// the tree of <paramref name="rendezvousKey"/>, together, as one call per child; returns the ids of the member silos
    /// reached here and below. A message id seen before is neither delivered nor passed on again (a tree being repaired
    /// may hold a loop for a moment).
    /// </summary>
    public async Task<string[]> SendDownAsync(Audience audience, string rendezvousKey, Disseminated[] messages)
    {
        var fresh = _passed.Fresh(messages);
        if (fresh.Length == 0)
        {
            return [];
        }

        var here = members.Has(audience);
        members.Deliver(audience, fresh);
        using var bounded = new CancellationTokenSource(HopTime, time);
        var scribe = await overlay.GetScribeAsync(bounded.Token).ConfigureAwait(false);
        var children = scribe.GetGroup(GroupOf(rendezvousKey))?.Children ?? [];
        var below = children.Count == 0
            ? []
            : await Task.WhenAll(children.Select(child => ChildAsync(child.Node.Key, audience, rendezvousKey, fresh))).ConfigureAwait(false);
        if (here)
        {
            Interlocked.Add(ref _treeDeliveries, fresh.Length);
        }

        return [.. below.SelectMany(b => b).Concat(here ? [silo.SiloAddress.ToParsableString()] : [])];
    }

    /// <summary>Counts member silos that a rendezvous here reached directly.</summary>
    public void CountDirect(int silos) => Interlocked.Add(ref _directDeliveries, silos);

    private async Task<string[]> ChildAsync(NodeKey child, Audience audience, string rendezvousKey, Disseminated[] messages)
    {
        try
        {
            using var bounded = new CancellationTokenSource(HopTime, time);
            var address = await overlay.SiloOfAsync(child, bounded.Token).ConfigureAwait(false);
            return await grains.GetGrain<IMemberHostGrain>(address.ToParsableString()).SendDown(audience, rendezvousKey, messages).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or OperationCanceledException)
        {
            // The child's silo is gone or unreachable: the rendezvous reaches what lies below it directly.
            overlay.ForgetSilo(child);
            return [];
        }
    }
}
