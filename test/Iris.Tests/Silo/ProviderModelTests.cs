using System.Globalization;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Iris.Tests.Silo;

/// <summary>Iris as the Orleans clustering provider named "Iris": hosts configured by configuration alone, as .NET
/// Aspire configures them.</summary>
public class ProviderModelTests
{
    [Fact]
    public async Task A_silo_and_a_client_configured_only_with_the_provider_name_join_the_network()
    {
        var key = Convert.ToBase64String(NetworkKey.Generate().Bytes);
        var discovery = 43000 + (Random.Shared.Next(0, 100) * 16);
        using var first = await InProcessSilo.StartAsync(key, discovery, echoCluster: "provider-echo");

        // Nothing but configuration and a plain UseOrleans().
        var siloBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        siloBuilder.Logging.ClearProviders();
        siloBuilder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Orleans:Clustering:ProviderType"] = "Iris",
            ["Iris:Network:Key"] = key,
            ["Iris:Network:Discovery:Port"] = discovery.ToString(CultureInfo.InvariantCulture),
            ["Iris:Silo:SiloPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
            ["Iris:Silo:GatewayPort"] = PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture),
        });
        siloBuilder.UseOrleans();
        using var configured = siloBuilder.Build();
        await configured.StartAsync();
        var membership = configured.Services.GetRequiredService<IClusterMembershipService>();
        await Eventually.HoldsAsync(() => membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) == 2, "the configured silo in one cluster with the other", TimeSpan.FromSeconds(60));
        Assert.Equal([4, 2], await configured.Services.GetRequiredService<IIrisClient>().RequestAsync("provider-echo", [4, 2], TimeSpan.FromSeconds(30)));

        var clientBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        clientBuilder.Logging.ClearProviders();
        clientBuilder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Orleans:Clustering:ProviderType"] = "Iris",
            ["Iris:Client:NetworkKey"] = key,
            ["Iris:Client:DiscoveryPort"] = discovery.ToString(CultureInfo.InvariantCulture),
        });
        clientBuilder.UseOrleansClient();
        using var client = clientBuilder.Build();
        await client.StartAsync();
        Assert.Equal([7], await client.Services.GetRequiredService<IIrisClient>().RequestAsync("provider-echo", [7], TimeSpan.FromSeconds(30)));

        await client.StopAsync();
        await configured.StopAsync();
        await first.StopAsync();
    }
}
