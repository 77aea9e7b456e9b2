using System.Net;
using System.Net.Sockets;
using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Tests.Patterns;

/// <summary>Two Iris silos in this process, forming their Orleans cluster through the overlay, with a network key
/// and a discovery port range of their own.</summary>
public sealed class IrisClusterFixture : IAsyncLifetime
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

    private async Task<IHost> StartSiloAsync()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Iris:Network:Key"] = _key,
            ["Iris:Network:Discovery:Port"] = _discoveryPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        builder.UseOrleans(silo => silo.UseIris(options =>
        {
            options.SiloPort = PortPicker.AnyFree();
            options.GatewayPort = PortPicker.AnyFree();
            options.EchoCluster = "fixture-echo";
        }));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

}
