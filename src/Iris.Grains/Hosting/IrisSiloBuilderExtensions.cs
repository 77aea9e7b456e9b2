using System.Net;
using Iris.Members;
using Iris.Membership;
using Iris.Patterns;
using Iris.Placement;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Iris.Overlay.Security;
using Iris.Security;
using Iris.Tunnels;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Serialization;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans silo.</summary>
public static class IrisSiloBuilderExtensions
{
    /// <summary>
    /// Adds Iris to the silo: its overlay node (network key, secure transport, discovery or seeds), Orleans
    /// membership kept on the ring, so the silo needs no other clustering provider, and the network-key handshake
    /// and encryption on every Orleans connection, so a silo or client without the key cannot connect. With
    /// <see cref="IrisSiloOptions.Membership"/> set to <see cref="IrisMembership.Localhost"/> Orleans forms a
    /// one-machine cluster of its own instead.
    /// </summary>
    public static ISiloBuilder UseIris(this ISiloBuilder builder, IrisSiloOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        var validation = new IrisSiloOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(IrisSiloOptions), typeof(IrisSiloOptions), validation.Failures);
        }

        if (options.Membership == IrisMembership.Localhost)
        {
            builder.UseLocalhostClustering(options.SiloPort, options.GatewayPort, null, options.ServiceId, options.ClusterId);
        }
        else
        {
            builder.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = options.ClusterId;
                cluster.ServiceId = options.ServiceId;
            });
            if (options.ConfigureEndpoints)
            {
                builder.Configure<EndpointOptions>(endpoints =>
                {
                    endpoints.AdvertisedIPAddress = IPAddress.Loopback;
                    endpoints.SiloPort = options.SiloPort;
                    endpoints.GatewayPort = options.GatewayPort;
                });
            }

            builder.Services.AddSingleton<IMembershipTable>(services => new OverlayMembershipTable(
                services.GetRequiredService<IrisOverlay>().GetRecordsAsync,
                services.GetRequiredService<Serializer<MembershipTableState>>(),
                options.ClusterId,
                services.GetRequiredService<ILogger<OverlayMembershipTable>>()));
        }

        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(services => new NetworkKeyProvider(() => services.GetService<NetworkKey>()
            ?? NetworkKeys.Resolve(services.GetRequiredService<IConfiguration>(), services.GetRequiredService<IHostEnvironment>().IsDevelopment())));
        builder.Configure<SiloConnectionOptions>(connections =>
        {
            // Every Orleans connection, silo to silo and client to gateway, opens with the network-key handshake.
            connections.ConfigureSiloInboundConnection(connection => connection.UseIrisSecurity(initiator: false));
            connections.ConfigureSiloOutboundConnection(connection => connection.UseIrisSecurity(initiator: true));
            connections.ConfigureGatewayInboundConnection(connection => connection.UseIrisSecurity(initiator: false));
        });
        builder.Services.AddSingleton<IrisOverlay>();
        builder.Services.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        builder.Services.AddPlacementDirector<RendezvousPlacement, RendezvousPlacementDirector>();
        builder.Services.AddSingleton<LocalMembers>();
        builder.Services.AddSingleton(services =>
        {
            var tunnels = new TunnelOptions();
            services.GetRequiredService<IConfiguration>().GetSection(TunnelOptions.SectionName).Bind(tunnels);
            return tunnels;
        });
        builder.Services.AddSingleton<LocalTunnels>();
        builder.Services.AddSingleton<MemberDirectory>();
        builder.Services.AddSingleton<ScribeDissemination>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<SiloIrisClient>();
        builder.Services.AddSingleton<IIrisClient>(services => services.GetRequiredService<SiloIrisClient>());
        builder.Services.AddHostedService(services => services.GetRequiredService<SiloIrisClient>());
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SiloEndpointLogger>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, OverlayLifecycle>();
        if (options.EchoCluster is { Length: > 0 } echo)
        {
            builder.AddIrisMember<EchoHandler>(echo);
        }

        return builder;
    }

    /// <summary>Hosts a member of <paramref name="cluster"/> in the silo: <typeparamref name="THandler"/> is created
    /// from the silo's services and registered when the silo starts.</summary>
    public static ISiloBuilder AddIrisMember<THandler>(this ISiloBuilder builder, string cluster, MemberLimits? limits = null)
        where THandler : class, IClusterHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        builder.Services.TryAddSingleton<THandler>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services => new MemberRegistration(
            services.GetRequiredService<IIrisClient>(), cluster, services.GetRequiredService<THandler>(), limits));
        return builder;
    }

    /// <summary>Registers an in-silo member once the silo is active, and leaves the cluster when it stops.</summary>
    private sealed class MemberRegistration(IIrisClient client, string cluster, IClusterHandler handler, MemberLimits? limits) : ILifecycleParticipant<ISiloLifecycle>
    {
        private IAsyncDisposable? _registration;

        public void Participate(ISiloLifecycle lifecycle) =>
            lifecycle.Subscribe(
                nameof(MemberRegistration),
                ServiceLifecycleStage.Active + 1,
                async cancellationToken => _registration = await client.RegisterAsync(cluster, handler, limits, cancellationToken).ConfigureAwait(false),
                async _ =>
                {
                    if (_registration is not null)
                    {
                        await _registration.DisposeAsync().ConfigureAwait(false);
                    }
                });
    }
}
