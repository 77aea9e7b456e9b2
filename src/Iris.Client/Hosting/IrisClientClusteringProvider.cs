using Iris.Hosting;
using Microsoft.Extensions.Configuration;
using Orleans.Providers;

[assembly: RegisterProvider("Iris", "Clustering", "Client", typeof(IrisClientClusteringProvider))]

namespace Iris.Hosting;

/// <summary>
/// Iris as an Orleans clustering provider named "Iris" for clients: a client host configured with
/// <c>Orleans:Clustering:ProviderType=Iris</c> and a plain <c>UseOrleansClient()</c> runs
/// <see cref="IrisClientBuilderExtensions.UseIris(IClientBuilder, Action{IrisClientOptions}?)"/>, its settings read from
/// <c>Iris:Client</c> as always.
/// </summary>
internal sealed class IrisClientClusteringProvider : IProviderBuilder<IClientBuilder>
{
    public void Configure(IClientBuilder builder, string? name, IConfigurationSection configurationSection) => builder.UseIris();
}
