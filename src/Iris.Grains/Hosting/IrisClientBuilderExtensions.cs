using Iris.Members;
using Iris.Overlay.Security;
using Iris.Patterns;
using Iris.Security;
using Iris.Tunnels;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Messaging;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans client.</summary>
public static class IrisClientBuilderExtensions
{
    /// <summary>Connects the client to an Iris cluster: its gateways come from <see cref="IrisClientOptions.Gateways"/>
    /// or, by default, from the silos' discovery beacons; its connections open with the network-key handshake, so it
    /// needs the cluster's network key (<see cref="IrisClientOptions.NetworkKey"/>, a key file, or in development
    /// the user's development key).</summary>
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
        builder.Services.AddSingleton(new NetworkKeyProvider(() =>
            NetworkKeys.Resolve(options.NetworkKey, options.KeyFile, NetworkKey.DefaultDevelopmentKeyPath)));
        builder.Configure<ClientConnectionOptions>(connections => connections.ConfigureConnection(connection => connection.UseIrisSecurity(initiator: true)));
        builder.Services.AddSingleton<IGatewayListProvider, IrisGatewayListProvider>();
        builder.Services.AddSingleton<LocalMembers>();
        builder.Services.AddSingleton(options.Tunnels);
        builder.Services.AddSingleton<LocalTunnels>();
        builder.Services.AddSingleton<ClientIrisClient>();
        builder.Services.AddSingleton<IIrisClient>(services => services.GetRequiredService<ClientIrisClient>());
        builder.Services.AddHostedService(services => services.GetRequiredService<ClientIrisClient>());
        return builder;
    }
}
