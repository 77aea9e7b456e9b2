using Iris.Hosting;
using Iris.Members;
using Iris.Overlay;
using Iris.Overlay.Scribe;
using Iris.Placement;

namespace Iris.Patterns;

/// <summary>
/// Broadcasts and publications down a name's Scribe tree, hop by hop over Orleans calls. Every silo with members of a
/// cluster (or subscribers of a topic) subscribes its overlay node to the Scribe group of each of the name's
/// rendezvous keys; the tree of a key is rooted at the key's ring root, which is where the rendezvous grain lives. The
/// rendezvous starts a message at its own silo; each silo delivers to its own members and calls the member host of
/// each of its children in the tree (the silo of a child node is asked of the node once and remembered). Each silo
/// answers with the member silos reached below it, and the rendezvous sends directly (see <see cref="Dissemination"/>)
/// to every member it knows that the tree did not reach: Orleans clients, which are not in trees, and silos whose
/// tree branch is still joining or being repaired. So every member gets the message once, and the tree carries it
/// whenever the tree is whole.
/// </summary>
internal sealed class ScribeDissemination(IrisOverlay overlay, LocalMembers members, IGrainFactory grains, ILocalSiloDetails silo)
{
    /// <summary>The Scribe member name a silo subscribes under: one per silo and group.</summary>
    private const string TreeMember = "members";

    private readonly RecentIds _passed = new();
    private long _treeDeliveries;
    private long _directDeliveries;

    /// <summary>Silos this one delivered to through a tree (as a hop, itself included).</summary>
    public long TreeDeliveries => Interlocked.Read(ref _treeDeliveries);

    /// <summary>Member silos a rendezvous here had to reach directly because the tree did not.</summary>
    public long DirectDeliveries => Interlocked.Read(ref _directDeliveries);

    /// <summary>The Scribe group of a rendezvous key: the same ring key, so the tree's root is the rendezvous' silo.</summary>
    public static NodeKey GroupOf(string rendezvousKey) => RendezvousPlacement.KeyOf(rendezvousKey);

    /// <summary>Puts this silo in the trees of <paramref name="rendezvousKeys"/>.</summary>
    public async Task JoinAsync(IEnumerable<string> rendezvousKeys)
    {
        var scribe = await overlay.GetScribeAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var key in rendezvousKeys)
        {
            scribe.Subscribe(GroupOf(key), TreeMember);
        }
    }

    /// <summary>Takes this silo out of the trees of <paramref name="rendezvousKeys"/>.</summary>
    public async Task LeaveAsync(IEnumerable<string> rendezvousKeys)
    {
        var scribe = await overlay.GetScribeAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var key in rendezvousKeys)
        {
            scribe.Unsubscribe(GroupOf(key), TreeMember);
        }
    }

    /// <summary>
    /// Delivers a message to this silo's members of <paramref name="name"/> and passes it to this node's children in
    /// the tree of <paramref name="rendezvousKey"/>; returns the ids of the member silos reached here and below. A
    /// message id seen before is neither delivered nor passed on again (a tree being repaired may hold a loop for a
    /// moment).
    /// </summary>
    public async Task<string[]> SendDownAsync(bool topic, string name, string rendezvousKey, byte[] message, Guid id)
    {
        if (!_passed.Add(id))
        {
            return [];
        }

        var here = topic ? members.HasSubscribers(name) : members.HasMembers(name);
        var delivery = topic ? members.PublishAsync(name, message, id) : members.BroadcastAsync(name, message, id);
        var scribe = await overlay.GetScribeAsync(CancellationToken.None).ConfigureAwait(false);
        var children = scribe.GetGroup(GroupOf(rendezvousKey))?.Children ?? [];
        var below = await Task.WhenAll(children.Select(child => ChildAsync(child.Node.Key, topic, name, rendezvousKey, message, id))).ConfigureAwait(false);
        await delivery.ConfigureAwait(false);
        if (here)
        {
            Interlocked.Increment(ref _treeDeliveries);
        }

        return [.. below.SelectMany(b => b).Concat(here ? [silo.SiloAddress.ToParsableString()] : [])];
    }

    /// <summary>Counts member silos that a rendezvous here reached directly.</summary>
    public void CountDirect(int silos) => Interlocked.Add(ref _directDeliveries, silos);

    private async Task<string[]> ChildAsync(NodeKey child, bool topic, string name, string rendezvousKey, byte[] message, Guid id)
    {
        try
        {
            var address = await overlay.SiloOfAsync(child, CancellationToken.None).ConfigureAwait(false);
            return await grains.GetGrain<IMemberHostGrain>(address.ToParsableString()).SendDown(topic, name, rendezvousKey, message, id).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            // The child's silo is gone or unreachable: the rendezvous reaches what lies below it directly.
            overlay.ForgetSilo(child);
            return [];
        }
    }
}
