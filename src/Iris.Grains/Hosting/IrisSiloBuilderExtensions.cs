using Iris.Calls;
using Iris.Grains.Dissemination;
using Iris.Grains.Members;
using Iris.Grains.Rendezvous;
using Iris.Grains.Status;
using Iris.Membership;
using Iris.Overlay.Scribe;
using Iris.Overlay.Security;
using Iris.Placement;
using Iris.Ring;
using Iris.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Serialization;

namespace Iris.Hosting;

/// <summary>Adds Iris to an Orleans silo.</summary>
public static class IrisSiloBuilderExtensions
{
    /// <summary>
    /// Adds Iris to the silo: its overlay node (network key, secure transport, discovery or seeds), Orleans
    /// membership kept on the ring, so the silo needs no other clustering provider, and the network-key handshake
    /// and encryption on every Orleans connection, so a silo or client without the key cannot connect. Options are
    /// bound from <c>Iris:Silo</c> (tunnels from <c>Iris:Tunnels</c>, Scribe from <c>Iris:Overlay:Scribe</c>), then
    /// <paramref name="configure"/> runs; all are checked when the silo starts.
    /// </summary>
    public static ISiloBuilder UseIris(this ISiloBuilder builder, Action<IrisSiloOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<IrisSiloOptions>().BindConfiguration(IrisSiloOptions.SectionName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IrisSiloOptions>, IrisSiloOptionsValidator>());
        services.AddOptions<ScribeOptions>().BindConfiguration("Iris:Overlay:Scribe").ValidateOnStart();
        // Iris' own errors reach the caller with their type and message, as Orleans' and .NET's do, not as "no codec".
        services.AddOptions<Orleans.Serialization.ExceptionSerializationOptions>().Configure(exceptions => exceptions.SupportedNamespacePrefixes.Add("Iris."));
        services.AddOptions<SiloMessagingOptions>()
            .Validate(messaging => messaging.DropExpiredMessages, CallPolicy.DropExpiredMessagesRequired)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ScribeOptions>, ScribeOptionsValidator>());
        services.AddOptions<ClusterOptions>().Configure<IOptions<IrisSiloOptions>>((cluster, iris) =>
        {
            cluster.ClusterId = iris.Value.ClusterId;
            cluster.ServiceId = iris.Value.ServiceId;
        });
        services.AddOptions<ClusterMembershipOptions>().BindConfiguration(IrisSiloOptions.MembershipSectionName);
        services.AddOptions<EndpointOptions>().Configure<IOptions<IrisSiloOptions>, IConfiguration, IHostEnvironment>((endpoints, iris, configuration, environment) =>
        {
            if (iris.Value.ConfigureEndpoints)
            {
                // Orleans listens where it advertises, so one address serves both.
                endpoints.AdvertisedIPAddress = SiloEndpointAddress.For(iris.Value, configuration, environment.IsDevelopment());
                endpoints.SiloPort = iris.Value.SiloPort;
                endpoints.GatewayPort = iris.Value.GatewayPort;
            }
        });
        services.AddSingleton<IMembershipTable>(sp => new OverlayMembershipTable(
            sp.GetRequiredService<IrisOverlay>().GetRecordsAsync,
            sp.GetRequiredService<Serializer<MembershipTableState>>(),
            sp.GetRequiredService<IOptions<IrisSiloOptions>>().Value.ClusterId,
            sp.GetRequiredService<ILogger<OverlayMembershipTable>>(),
            sp.GetRequiredKeyedService<Random>(LockedRandom.ServiceKey)));
        services.TryAddSingleton(sp => new NetworkKeyProvider(() =>
            NetworkKeys.Resolve(sp.GetRequiredService<IConfiguration>(), sp.GetRequiredService<IHostEnvironment>().IsDevelopment())));
        builder.Configure<SiloConnectionOptions>(SecureEveryConnection);
        services.AddSingleton<IrisOverlay>();
        services.AddSingleton<IHealthCheckParticipant, OverlayHealthParticipant>();
        services.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        services.AddPlacementDirector<RendezvousPlacement, RendezvousPlacementDirector>();
        services.AddIrisProcess(TunnelOptions.SectionName);
        services.AddSingleton<ScribeDissemination>();
        services.AddSingleton<LocalRendezvous>();
        services.AddSingleton(sp => new IrisTraffic(sp.GetRequiredService<TimeProvider>()));
        // Listening from the start, so the status shows the traffic of the last seconds however late it is first read.
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<IrisTraffic>());
        services.AddGrainService<MemberHostService>();
        services.AddSingleton<SiloIrisClient>();
        services.AddSingleton<IIrisClient>(sp => sp.GetRequiredService<SiloIrisClient>());
        services.AddHostedService(sp => sp.GetRequiredService<SiloIrisClient>());
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SiloEndpointLogger>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, OverlayLifecycle>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => NewMemberRegistration(
            sp,
            () => sp.GetRequiredService<IOptions<IrisSiloOptions>>().Value.EchoCluster is { Length: > 0 } echo ? echo : null,
            new EchoHandler(),
            new MemberOptions { Idempotent = true }));
        return builder;
    }

    /// <summary>
    /// Makes a silo that finds itself declared dead stop its host, rather than end the process with Orleans'
    /// <c>Environment.FailFast</c>; the host's <see cref="SiloDeath"/> says so afterwards. Other fatal errors keep the
    /// handler registered before (Orleans' by default). For a program that decides itself what a dead silo does, as
    /// Iris.Silo does: exit with its own code, or start a new silo.
    /// </summary>
    internal static ISiloBuilder StopWhenDeclaredDead(this ISiloBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var previous = services.LastOrDefault(d => d.ServiceType == typeof(IFatalErrorHandler) && !d.IsKeyedService)
            ?? throw new InvalidOperationException("Orleans' fatal-error handler is not registered: call StopWhenDeclaredDead inside UseOrleans.");
        services.RemoveAll<IFatalErrorHandler>();
        services.TryAddSingleton<SiloDeath>();
        services.AddSingleton<IFatalErrorHandler>(sp => new DeclaredDeadHandler(
            Create(sp, previous), sp.GetRequiredService<SiloDeath>(), sp, sp.GetRequiredService<ILogger<DeclaredDeadHandler>>()));
        return builder;

        static IFatalErrorHandler Create(IServiceProvider sp, ServiceDescriptor descriptor) =>
            descriptor.ImplementationInstance as IFatalErrorHandler
            ?? descriptor.ImplementationFactory?.Invoke(sp) as IFatalErrorHandler
            ?? (IFatalErrorHandler)ActivatorUtilities.CreateInstance(sp, descriptor.ImplementationType!);
    }

    /// <summary>Hosts a member of <paramref name="cluster"/> in the silo: <typeparamref name="THandler"/> is created
    /// from the silo's services and registered when the silo starts. A registration that fails then (the ring cannot
    /// reach a majority of the cluster's member list yet) is logged and tried again until it succeeds, rather than
    /// failing the silo.</summary>
    public static ISiloBuilder AddIrisMember<THandler>(this ISiloBuilder builder, string cluster, MemberOptions? options = null)
        where THandler : class, IClusterHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(cluster);
        builder.Services.TryAddSingleton<THandler>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => NewMemberRegistration(
            sp, () => cluster, sp.GetRequiredService<THandler>(), options ?? new MemberOptions()));
        return builder;
    }

    private static MemberRegistration NewMemberRegistration(IServiceProvider sp, Func<string?> cluster, IClusterHandler handler, MemberOptions options) =>
        new(
            sp.GetRequiredService<IIrisClient>(),
            () => SiloDeath.InOwnView(sp),
            cluster,
            handler,
            options,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<MemberRegistration>>());

    /// <summary>Every Orleans connection of a silo, silo to silo and client to gateway, opens with the network-key
    /// handshake and carries AES-GCM frames (the key from <see cref="NetworkKeyProvider"/>).</summary>
    internal static void SecureEveryConnection(SiloConnectionOptions connections)
    {
        connections.ConfigureSiloInboundConnection(connection => connection.UseIrisSecurity(initiator: false));
        connections.ConfigureSiloOutboundConnection(connection => connection.UseIrisSecurity(initiator: true));
        connections.ConfigureGatewayInboundConnection(connection => connection.UseIrisSecurity(initiator: false));
    }
}
