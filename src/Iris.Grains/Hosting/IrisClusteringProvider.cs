using Iris.Hosting;
using Microsoft.Extensions.Configuration;
using Orleans.Providers;

[assembly: RegisterProvider("Iris", "Clustering", "Silo", typeof(IrisClusteringProvider))]

namespace Iris.Hosting;

/// <summary>
/// Iris as an Orleans clustering provider named "Iris": a silo host configured with
/// <c>Orleans:Clustering:ProviderType=Iris</c> and a plain <c>UseOrleans()</c> (as .NET Aspire's <c>WithClustering</c>
/// sets it up) runs <see cref="IrisSiloBuilderExtensions.UseIris(ISiloBuilder, Action{IrisSiloOptions}?)"/>, its
/// settings read from <c>Iris:*</c> as always.
/// </summary>
internal sealed class IrisClusteringProvider : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.UseIris();
}
