using Iris.Members;
using Iris.Relay.Protocol;

namespace Iris.Relay.Sessions;

/// <summary>A relay connection's subscription to one topic: events go to the client, best effort.</summary>
internal sealed class RelaySubscriber(RelayConnection connection, string topic) : ITopicHandler, IQueueingHandler
{
    public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
    {
        connection.Push(RelayOut.Publish(topic, message));
        return Task.CompletedTask;
    }
}
