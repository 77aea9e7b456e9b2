using Iris.Relay;
using Iris.Relay.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

// Beside the other Add… methods of a host's services, as Microsoft's own libraries do.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the relay endpoint to a silo's host.</summary>
public static class RelayServiceCollectionExtensions
{
    /// <summary>
    /// Serves the Iris relay protocol (v1.0-draft2) for applications written with the Iris client libraries, on
    /// 127.0.0.1:55555 by default (<see cref="RelayOptions"/>, section <c>Iris:Relay</c>). Call it after <c>UseOrleans</c>:
    /// the endpoint opens once the silo runs and closes before the silo stops.
    /// </summary>
    public static IServiceCollection AddIrisRelay(this IServiceCollection services, Action<RelayOptions>? configure = null)
    {
        var options = services.AddOptions<RelayOptions>().BindConfiguration(RelayOptions.SectionName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddSingleton<IValidateOptions<RelayOptions>, RelayOptionsValidator>();
        services.AddSingleton<RelayListener>();
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<RelayListener>());
        return services;
    }
}
