using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Iris.Tests.Patterns;

/// <summary>Two Iris silos in this process, forming their Orleans cluster through the overlay, with a network key
/// and a discovery port range of their own.</summary>
public class IrisClusterFixture : IAsyncLifetime
{
    private readonly string _key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
    private readonly int _discoveryPort = 46000 + (Random.Shared.Next(0, 200) * 16);

    public IHost A { get; private set; } = null!;

    public IHost B { get; private set; } = null!;

    public IIrisClient IrisA => A.Services.GetRequiredService<IIrisClient>();

    public IIrisClient IrisB => B.Services.GetRequiredService<IIrisClient>();

    public IGrainFactory GrainsA => A.Services.GetRequiredService<IGrainFactory>();

    public IGrainFactory GrainsB => B.Services.GetRequiredService<IGrainFactory>();

    public async Task InitializeAsync()
    {
        A = await StartSiloAsync();
        B = await StartSiloAsync();
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

    private Task<IHost> StartSiloAsync() => StartSiloAsync(_key, _discoveryPort);

    /// <summary>Starts one of the two silos.</summary>
    protected virtual Task<IHost> StartSiloAsync(string key, int discoveryPort) => InProcessSilo.StartAsync(key, discoveryPort, echoCluster: "fixture-echo");

}
