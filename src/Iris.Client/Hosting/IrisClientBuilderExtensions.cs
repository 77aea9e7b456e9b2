using Iris.Calls;
using Iris.Overlay.Security;
using Iris.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Messaging;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans client.</summary>
public static class IrisClientBuilderExtensions
{
    /// <summary>Connects the client to an Iris network: its gateways come from <see cref="IrisClientOptions.Gateways"/>
    /// or, by default, from the silos' discovery beacons; its connections open with the network-key handshake, so it
    /// needs the network key (<see cref="IrisClientOptions.NetworkKey"/>, a key file, or in development the user's
    /// development key). Options are bound from <c>Iris:Client</c>, then <paramref name="configure"/> runs; tunnel
    /// limits come from <c>Iris:Client:Tunnels</c>.</summary>
    public static IClientBuilder UseIris(this IClientBuilder builder, Action<IrisClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<IrisClientOptions>().BindConfiguration(IrisClientOptions.SectionName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IrisClientOptions>, IrisClientOptionsValidator>());
        services.AddOptions<ClusterOptions>().Configure<IOptions<IrisClientOptions>>((cluster, iris) =>
        {
            cluster.ClusterId = iris.Value.ClusterId;
            cluster.ServiceId = iris.Value.ServiceId;
        });
        services.AddSingleton(sp => new NetworkKeyProvider(() =>
        {
            var iris = sp.GetRequiredService<IOptions<IrisClientOptions>>().Value;
            return NetworkKeys.Resolve(iris.NetworkKey, iris.KeyFile, NetworkKey.DefaultDevelopmentKeyPath);
        }));
        // Beacons are cheap and local: a dead gateway leaves the list within seconds, and Orleans fails the calls that
        // were on their way through it (then repeated elsewhere with their ids) instead of leaving them to time out.
        services.AddOptions<GatewayOptions>().Configure(gateways => gateways.GatewayListRefreshPeriod = IrisGatewayListProvider.RefreshPeriod);
        // Iris' own errors reach the caller with their type and message, as Orleans' and .NET's do, not as "no codec".
        services.AddOptions<Orleans.Serialization.ExceptionSerializationOptions>().Configure(exceptions => exceptions.SupportedNamespacePrefixes.Add("Iris."));
        services.AddOptions<ClientMessagingOptions>()
            .Validate(messaging => messaging.DropExpiredMessages, CallPolicy.DropExpiredMessagesRequired)
            .ValidateOnStart();
        builder.Configure<ClientConnectionOptions>(connections => connections.ConfigureConnection(connection => connection.UseIrisSecurity(initiator: true)));
        services.AddSingleton<IGatewayListProvider, IrisGatewayListProvider>();
        services.AddSingleton<Calls.GatewayLoss>();
        services.AddSingleton<IClusterConnectionStatusObserver>(sp => sp.GetRequiredService<Calls.GatewayLoss>());
        services.AddSingleton(sp => new Requests.DirectRoutes(
            sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<IGatewayListProvider>(),
            sp.GetRequiredService<IOptions<GatewayOptions>>().Value.GatewayListRefreshPeriod,
            sp.GetRequiredService<TimeProvider>()));
        services.AddIrisProcess(TunnelOptions.ClientSectionName);
        // The application's calls to cluster and topic grains leave this process as IIrisClient's do: one hop.
        builder.AddOutgoingGrainCallFilter<ClientEntryCalls>();
        services.AddSingleton<ClientIrisClient>();
        services.AddSingleton<IIrisClient>(sp => sp.GetRequiredService<ClientIrisClient>());
        services.AddHostedService(sp => sp.GetRequiredService<ClientIrisClient>());
        return builder;
    }
}
