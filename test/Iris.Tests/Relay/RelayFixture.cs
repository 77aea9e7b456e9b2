using System.Net;
using Iris.Overlay.Security;
using Iris.Relay.Hosting;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Relay;

/// <summary>Two Iris silos in this process, each serving the relay protocol on a free loopback port.</summary>
public sealed class RelayFixture : IAsyncLifetime
{
    private readonly string _key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
    private readonly int _discoveryPort = 42000 + (Random.Shared.Next(0, 200) * 16);

    public IHost A { get; private set; } = null!;

    public IHost B { get; private set; } = null!;

    public IIrisClient IrisA => A.Services.GetRequiredService<IIrisClient>();

    public IIrisClient IrisB => B.Services.GetRequiredService<IIrisClient>();

    internal IPEndPoint RelayA => A.Services.GetRequiredService<RelayListener>().Endpoint!;

    internal IPEndPoint RelayB => B.Services.GetRequiredService<RelayListener>().Endpoint!;

    public async Task InitializeAsync()
    {
        A = await InProcessSilo.StartAsync(_key, _discoveryPort, relay: true);
        B = await InProcessSilo.StartAsync(_key, _discoveryPort, relay: true);
        var membership = A.Services.GetRequiredService<IClusterMembershipService>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the two silos did not form one cluster");
            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        await B.StopAsync();
        await A.StopAsync();
        B.Dispose();
        A.Dispose();
    }
}
