using Iris.Overlay.Discovery;
using Iris.Overlay.Hosting;
using Iris.Overlay.Security;

// Usage: Iris.Overlay.TestHost --key <base64> [--scope loopback|lan] [--port <discovery port>] [--interface <name>]
//                              [--listen <ip>] [--seed <ip:port>]
// Prints "NODE <key> <address>", "READY", "NEIGHBOUR+ <key>", "NEIGHBOUR- <key>", "FOREIGN <count>"; stops when
// standard input closes.
var options = new OverlayOptions { DiscoveryWait = TimeSpan.FromSeconds(1.5) };
options.Discovery.BeaconInterval = TimeSpan.FromMilliseconds(500);
options.Pastry.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
NetworkKey? key = null;
for (var i = 0; i < args.Length; i += 2)
{
    var value = args[i + 1];
    switch (args[i])
    {
        case "--key": key = NetworkKey.Parse(value); break;
        case "--scope": options.Discovery.Scope = Enum.Parse<DiscoveryScope>(value, ignoreCase: true); break;
        case "--port": options.Discovery.Port = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
        case "--interface": options.Discovery.Interfaces.Add(value); break;
        case "--listen": options.ListenAddress = value; break;
        case "--seed": options.Seeds.Add(value); break;
        default: throw new ArgumentException($"Unknown option {args[i]}.");
    }
}

var output = Console.Out;
var gate = new Lock();
void Say(string line)
{
    lock (gate)
    {
        output.WriteLine(line);
        output.Flush();
    }
}

await using var host = await OverlayHost.StartAsync(options, key ?? throw new ArgumentException("--key is required."), development: true);
host.NeighbourJoined += n => Say($"NEIGHBOUR+ {n.Key}");
host.NeighbourLeft += n => Say($"NEIGHBOUR- {n.Key}");
Say($"NODE {host.Node.Self.Key} {host.Node.Self.Address}");
using var stop = new CancellationTokenSource();
_ = Task.Run(async () =>
{
    await Console.In.ReadToEndAsync();
    await stop.CancelAsync();
});
try
{
    await host.WaitUntilReadyAsync(stop.Token);
    Say("READY");
    long foreign = -1;
    while (!stop.IsCancellationRequested)
    {
        if (host.Discovery is { } discovery && discovery.ForeignBeacons != foreign)
        {
            foreign = discovery.ForeignBeacons;
            Say($"FOREIGN {foreign}");
        }

        await Task.Delay(200, stop.Token);
    }
}
catch (OperationCanceledException)
{
}
