using Iris;
using Iris.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Usage: Iris.Member.TestHost <cluster>, with the network in Iris:Client settings (environment variables
// Iris__Client__NetworkKey, Iris__Client__DiscoveryPort). Registers an echo member of <cluster> and prints "READY";
// on the input line "leave" it leaves the cluster and prints "LEFT <requests served>"; it stops when its input closes.
var builder = Host.CreateApplicationBuilder(args);
builder.UseOrleansClient(client => client.UseIris());
using var host = builder.Build();
await host.StartAsync();

var echo = new CountingEcho();
var registration = await host.Services.GetRequiredService<IIrisClient>().RegisterAsync(args[0], echo);
Console.WriteLine("READY");
while (await Console.In.ReadLineAsync() is { } line)
{
    if (line == "leave")
    {
        await registration.DisposeAsync();
        Console.WriteLine($"LEFT {echo.Served}");
    }
}

await host.StopAsync();

internal sealed class CountingEcho : IClusterHandler
{
    private int _served;

    public int Served => Volatile.Read(ref _served);

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _served);
        return Task.FromResult(request);
    }

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken) => Task.CompletedTask;
}
