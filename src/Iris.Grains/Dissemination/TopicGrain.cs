using Iris.Dissemination;
using Iris.Protocol;
using Orleans.Concurrency;

namespace Iris.Grains.Dissemination;

/// <summary>The entry point of a topic on whichever silo is called: hands a publication to one of the topic's
/// rendezvous grains, which reads its subscribers then, so a subscription made before the call is served.</summary>
[StatelessWorker]
[Reentrant]
internal sealed class TopicGrain(DisseminationSender dissemination) : Grain, ITopicGrain
{
    public Task Publish(byte[] message) => dissemination.SendAsync(Audience.Topic(this.GetPrimaryKeyString()), message, CancellationToken.None);
}
