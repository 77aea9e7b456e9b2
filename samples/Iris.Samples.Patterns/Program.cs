// An Orleans client of a local Iris network (start one or more nodes first: dotnet run --project src/Iris.Silo).
// It serves the cluster "echo", calls it, broadcasts to it, publishes on a topic, opens a tunnel, and asks a cluster
// nobody serves.
using System.Text;
using Iris;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.UseOrleansClient(client => client.UseIris()); // gateways from the local silos' beacons, development key
using var host = builder.Build();
await host.StartAsync();

var iris = host.Services.GetRequiredService<IIrisClient>();
var grains = host.Services.GetRequiredService<IClusterClient>();

// Request/reply: become a member of "echo", then call the cluster by name.
var echo = new EchoHandler();
await using (await iris.RegisterAsync("echo", echo))
{
    var reply = await grains.GetGrain<IClusterGrain>("echo").Request(Encoding.UTF8.GetBytes("hello"), TimeSpan.FromSeconds(5));
    Console.WriteLine($"reply: {Encoding.UTF8.GetString(reply)}");

    // Broadcast: every member of the cluster gets it once (this one included). The call returns once the message is
    // accepted for delivery; handlers run after it.
    await grains.GetGrain<IClusterGrain>("echo").Broadcast(Encoding.UTF8.GetBytes("to everyone"));
    await echo.FirstBroadcast.WaitAsync(TimeSpan.FromSeconds(5));
    Console.WriteLine($"broadcasts received: {echo.Broadcasts}");
}

// Publish/subscribe: every subscriber of the topic gets each publication once.
var news = new NewsSubscriber();
await using (await iris.SubscribeAsync("news", news))
{
    await grains.GetGrain<ITopicGrain>("news").Publish(Encoding.UTF8.GetBytes("extra"));
    await news.FirstPublication.WaitAsync(TimeSpan.FromSeconds(5));
    Console.WriteLine($"publications received: {news.Received}");
}

// Tunnels: an ordered, flow-controlled stream to one member. This process serves "shout" too, answering each
// message in capitals; the opener sends, receives in order, and closes (everything sent is delivered first).
await using (await iris.RegisterAsync("shout", new ShoutHandler()))
{
    await using var tunnel = await iris.OpenTunnelAsync("shout", TimeSpan.FromSeconds(5));
    foreach (var word in new[] { "one", "two", "three" })
    {
        await tunnel.SendAsync(Encoding.UTF8.GetBytes(word));
        Console.WriteLine($"tunnel: {Encoding.UTF8.GetString(await tunnel.ReceiveAsync())}");
    }

    await tunnel.CloseAsync();
}

// A cluster with no members answers at once.
try
{
    await grains.GetGrain<IClusterGrain>("nobody").Request([], TimeSpan.FromSeconds(30));
}
catch (NoMembersException e)
{
    Console.WriteLine($"no members: {e.Message}");
}

await host.StopAsync();

internal sealed class EchoHandler : IClusterHandler
{
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _broadcasts;

    public int Broadcasts => _broadcasts;

    public Task FirstBroadcast => _first.Task;

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _broadcasts);
        _first.TrySetResult();
        return Task.CompletedTask;
    }
}

internal sealed class NewsSubscriber : ITopicHandler
{
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _received;

    public int Received => _received;

    public Task FirstPublication => _first.Task;

    public Task HandlePublishAsync(byte[] message, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _received);
        _first.TrySetResult();
        return Task.CompletedTask;
    }
}

internal sealed class ShoutHandler : IClusterHandler
{
    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) => Task.FromResult(request);

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;

    // Accepting a tunnel: converse until the opener closes it. (Handlers that leave this out refuse tunnels.)
    public async Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken)
    {
        await foreach (var message in tunnel.ReadAllAsync(cancellationToken))
        {
            await tunnel.SendAsync(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(message).ToUpperInvariant()), cancellationToken);
        }
    }
}
