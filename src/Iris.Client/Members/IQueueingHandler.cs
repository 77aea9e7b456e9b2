namespace Iris.Members;

/// <summary>
/// A member or subscriber whose broadcast and publication handling only queues the message for someone else (a relay
/// connection's client) and never blocks: the member host calls it on the delivering thread instead of starting a task
/// on the thread pool, one thread hop less between the sender and the client.
/// </summary>
internal interface IQueueingHandler;
