using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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

    /// <summary>What the two silos logged lately.</summary>
    internal MemoryLog Log { get; } = new();

    public async Task InitializeAsync()
    {
        A = await StartSiloAsync(_key, _discoveryPort, Log.For("A"));
        B = await StartSiloAsync(_key, _discoveryPort, Log.For("B"));
        var membership = A.Services.GetRequiredService<IClusterMembershipService>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the two silos did not form one cluster");
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Stops both silos. When one of them was declared dead meanwhile (its tests then fail with calls to a dead silo),
    /// the fixture fails too, with what the silos logged: why a silo of a fixture that no test kills was declared dead
    /// is otherwise not seen.
    /// </summary>
    public async Task DisposeAsync()
    {
        var dead = new[] { A, B }.SelectMany(h => h.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values)
            .Where(m => m.Status == SiloStatus.Dead).Select(m => m.SiloAddress).Distinct().ToList();
        await B.StopAsync();
        await A.StopAsync();
        B.Dispose();
        A.Dispose();
        if (dead.Count > 0)
        {
            throw new InvalidOperationException($"{GetType().Name}: silo {string.Join(", ", dead)} was declared dead while its tests ran; what the silos logged:\n{Log}");
        }
    }

    /// <summary>Starts one of the two silos, logging to <paramref name="log"/>.</summary>
    protected virtual Task<IHost> StartSiloAsync(string key, int discoveryPort, ILoggerProvider log) =>
        InProcessSilo.StartAsync(key, discoveryPort, echoCluster: "fixture-echo", log: log);

}
