using Iris.Calls;
using Iris.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace Iris.Hosting;

/// <summary>
/// In an Orleans client, the calls the application makes to <see cref="IClusterGrain"/> and <see cref="ITopicGrain"/>
/// are made by this process's own request and dissemination senders, as <see cref="IIrisClient"/> makes them: a request
/// goes in one hop to the chosen member's process, a broadcast or publication to the name's rendezvous. Sent as grain
/// calls, they would go to the gateway the name maps to, whose silo runs the entry grain, which then calls the member
/// or the rendezvous: a second hop for most of them. The caller gets the same replies and the same errors either way;
/// other calls pass through untouched.
/// </summary>
internal sealed class ClientEntryCalls(IServiceProvider services) : IOutgoingGrainCallFilter
{
    // Resolved at the first call: the senders depend on the grain factory, which depends on the call filters.
    private IrisServices? _iris;

    private IrisServices Iris => _iris ??= services.GetRequiredService<IrisServices>();

    public Task Invoke(IOutgoingGrainCallContext context)
    {
        var call = context.Request;
        var type = call.GetInterfaceType();
        if (type == typeof(IClusterGrain))
        {
            var method = call.GetMethodName();
            if (method == nameof(IClusterGrain.Request))
            {
                return RequestAsync(context, Iris, Name(context), (byte[])call.GetArgument(0)!, (TimeSpan)call.GetArgument(1)!);
            }

            if (method == nameof(IClusterGrain.Broadcast))
            {
                return SendAsync(context, Iris, Audience.Cluster(Name(context)), (byte[])call.GetArgument(0)!);
            }
        }
        else if (type == typeof(ITopicGrain) && call.GetMethodName() == nameof(ITopicGrain.Publish))
        {
            return SendAsync(context, Iris, Audience.Topic(Name(context)), (byte[])call.GetArgument(0)!);
        }

        return context.Invoke();
    }

    /// <summary>The cluster or topic name: the grain's string key.</summary>
    private static string Name(IOutgoingGrainCallContext context) => context.TargetId.Key.ToString()!;

    private static async Task RequestAsync(IOutgoingGrainCallContext context, IrisServices iris, string cluster, byte[] request, TimeSpan timeout) =>
        context.Result = await iris.Requests.RequestAsync(cluster, CallIds.Next(), request, timeout, isolate: true, CancellationToken.None).ConfigureAwait(false);

    private static async Task SendAsync(IOutgoingGrainCallContext context, IrisServices iris, Audience audience, byte[] message)
    {
        await iris.Dissemination.SendAsync(audience, message, CancellationToken.None).ConfigureAwait(false);
        context.Result = null;
    }
}
