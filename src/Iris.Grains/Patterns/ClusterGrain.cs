using System.Diagnostics;
using Iris.Diagnostics;
using Iris.Members;
using Iris.Tunnels;
using Orleans.Concurrency;

namespace Iris.Patterns;

/// <summary>
/// The entry point of a cluster on whichever silo is called: a local, stateless worker, reentrant so that a request
/// never waits behind a broadcast or a tunnel being opened. A request goes straight to
/// one member silo's member host; a broadcast down the name's Scribe tree (<see cref="ScribeDissemination"/>).
/// </summary>
[StatelessWorker]
[Reentrant]
internal sealed class ClusterGrain(MemberDirectory directory, IGrainFactory grains) : Grain, IClusterGrain, IClusterTunnelGrain
{
    private string Cluster => this.GetPrimaryKeyString();

    public async Task<byte[]> Request(byte[] request, TimeSpan timeout)
    {
        var started = Stopwatch.GetTimestamp();
        IrisMetrics.Requests.Add(1);
        IrisMetrics.Bytes.Add(request.Length, new KeyValuePair<string, object?>("direction", "request"));
        try
        {
            var reply = await RequestCoreAsync(request, timeout);
            IrisMetrics.Bytes.Add(reply.Length, new KeyValuePair<string, object?>("direction", "reply"));
            return reply;
        }
        catch (Exception e)
        {
            IrisMetrics.Failures.Add(1, new KeyValuePair<string, object?>("error", IrisMetrics.ErrorType(e)));
            throw;
        }
        finally
        {
            IrisMetrics.RequestDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    public async Task Broadcast(byte[] message)
    {
        IrisMetrics.Broadcasts.Add(1);
        IrisMetrics.Bytes.Add(message.Length, new KeyValuePair<string, object?>("direction", "broadcast"));

        // To the rendezvous, the root of the name's Scribe tree, and down the tree from there.
        await grains.GetGrain<IRendezvousGrain>(MemberDirectory.ClusterKey(Cluster, directory.NextSplit())).Disseminate(false, Cluster, message, Guid.NewGuid());
    }

    public async Task<TunnelAccepted> OpenTunnel(Guid id, MemberSilo opener, int openerWindow, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        try
        {
            return await ToMemberAsync(member => member.Call(grains, host => host.OpenTunnel(Cluster, id, opener, openerWindow, deadline))).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new IrisTimeoutException(Cluster, timeout);
        }
    }

    private async Task<byte[]> RequestCoreAsync(byte[] request, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        try
        {
            return await ToMemberAsync(member => member.Request(grains, Cluster, request, deadline)).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new IrisTimeoutException(Cluster, timeout);
        }
    }

    /// <summary>Makes <paramref name="call"/> to a member chosen by load; if the member's process is gone (its silo
    /// died, its client left), to another one, until the caller's deadline.</summary>
    private async Task<T> ToMemberAsync<T>(Func<MemberSilo, Task<T>> call)
    {
        var key = MemberDirectory.ClusterKey(Cluster, directory.NextSplit());
        var failed = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var members = await directory.MembersAsync(key);
            if (members.Length == 0)
            {
                throw new NoMembersException(Cluster);
            }

            var candidates = members.Where(m => !failed.Contains(m.Id)).ToArray();
            if (candidates.Length == 0)
            {
                // Every member we know failed: ask again shortly, the rendezvous drops the dead.
                await Task.Delay(100);
                directory.Forget(key);
                failed.Clear();
                continue;
            }

            var member = directory.Choose(candidates);
            using var _ = directory.Track(member.Id);
            try
            {
                return await call(member);
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or ClientNotAvailableException)
            {
                failed.Add(member.Id);
                directory.Forget(key);
            }
        }
    }
}

/// <summary>Opens tunnels to a cluster's members: implemented by the cluster grain, so the member is chosen as for a
/// request.</summary>
internal interface IClusterTunnelGrain : IGrainWithStringKey
{
    /// <summary>Offers tunnel <paramref name="id"/> of <paramref name="opener"/> to one member; returns its answer.</summary>
    Task<TunnelAccepted> OpenTunnel(Guid id, MemberSilo opener, int openerWindow, TimeSpan timeout);
}

/// <summary>The entry point of a topic on whichever silo is called.</summary>
[StatelessWorker]
[Reentrant]
internal sealed class TopicGrain(MemberDirectory directory, IGrainFactory grains) : Grain, ITopicGrain
{
    public async Task Publish(byte[] message)
    {
        var topic = this.GetPrimaryKeyString();
        IrisMetrics.Publications.Add(1);
        IrisMetrics.Bytes.Add(message.Length, new KeyValuePair<string, object?>("direction", "publication"));

        // To the rendezvous itself, not a cached list: a subscription made before this call is served.
        await grains.GetGrain<IRendezvousGrain>(MemberDirectory.TopicKey(topic, directory.NextSplit())).Disseminate(true, topic, message, Guid.NewGuid());
    }
}
