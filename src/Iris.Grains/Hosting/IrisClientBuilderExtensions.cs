using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Messaging;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans client.</summary>
public static class IrisClientBuilderExtensions
{
    /// <summary>Connects the client to an Iris cluster: its gateways come from <see cref="IrisClientOptions.Gateways"/>
    /// or, by default, from the silos' discovery beacons.</summary>
    public static IClientBuilder UseIris(this IClientBuilder builder, Action<IrisClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new IrisClientOptions();
        configure?.Invoke(options);
        builder.Configure<ClusterOptions>(cluster =>
        {
            cluster.ClusterId = options.ClusterId;
            cluster.ServiceId = options.ServiceId;
        });
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<IGatewayListProvider, IrisGatewayListProvider>();
        return builder;
    }
}
