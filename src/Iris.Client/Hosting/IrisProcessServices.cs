using Iris.Balancing;
using Iris.Calls;
using Iris.Dissemination;
using Iris.Members;
using Iris.Requests;
using Iris.Tunnels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Iris.Hosting;

/// <summary>Registers what every Iris process runs, silo or client.</summary>
internal static class IrisProcessServices
{
    /// <summary>Adds members, tunnels (options bound from <paramref name="tunnelSection"/>), the balancer, the senders
    /// and the call policy; time from <see cref="TimeProvider"/>, randomness from the keyed <see cref="Random"/>.</summary>
    public static IServiceCollection AddIrisProcess(this IServiceCollection services, string tunnelSection)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddKeyedSingleton<Random>(LockedRandom.ServiceKey, (_, _) => new LockedRandom(new Random()));
        services.AddOptions<TunnelOptions>().BindConfiguration(tunnelSection).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TunnelOptions>, TunnelOptionsValidator>());
        services.AddSingleton(sp => new CallPolicy(
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredKeyedService<Random>(LockedRandom.ServiceKey), sp.GetService<GatewayLoss>()));
        services.AddSingleton(sp => new MemberDirectory(
            sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredKeyedService<Random>(LockedRandom.ServiceKey)));
        services.AddSingleton<LocalMembers>();
        services.AddSingleton<LocalTunnels>();
        services.AddSingleton<RequestSender>();
        services.AddSingleton<LocalDelivery>(sp => sp.GetRequiredService<LocalMembers>().DeliverSent);
        services.AddSingleton<DisseminationSender>();
        services.AddSingleton<IrisServices>();
        return services;
    }
}
